"""Markdown for the drivers under a worsened figure and for revised past figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devmetrics.digest.figures import fmt_value, shorten
from devmetrics.metrics.flow import STAGES
from devmetrics.safe_text import markdown_link, markdown_text

KIND_TITLES = {"pull_requests": "slowest pull requests", "failed_deployments": "failed deployments",
               "workflows": "slowest workflows"}


def drivers_blocks(rows: Sequence[Mapping[str, Any]], title_length: int = 80) -> list[str]:
    """One block per worsened figure: what moved it, then the command that lists every row."""
    return [_block(row, title_length) for row in rows if row.get("drivers")]


def _block(row: Mapping[str, Any], title_length: int) -> str:
    drivers = row["drivers"]
    kind = drivers.get("kind")
    items = [_item(kind, found, title_length) for found in drivers.get("rows") or []]
    head = f"**Why {row['label'].lower()} worsened**"
    head += f" — {KIND_TITLES[kind]}:" if items and kind else ":"
    return "\n".join([head, *items, f"- all rows: `{drivers['explain']}`"])


def _item(kind: str | None, found: Mapping[str, Any], title_length: int) -> str:
    if kind == "pull_requests":
        return _pull_request(found, title_length)
    if kind == "failed_deployments":
        return _deployment(found, title_length)
    return (f"- {markdown_text(found['workflow'])}: median {fmt_value(found['median_minutes'], 'minutes')} "
            f"over {found['runs']} runs, success {fmt_value(found['success_rate'], 'rate')}")


def _pull_request(pr: Mapping[str, Any], title_length: int) -> str:
    label = f"#{pr['number']} {shorten(pr.get('title'), title_length)}".strip()
    link = markdown_link(label, pr.get("url"))
    stages = " · ".join(f"{stage} {fmt_value(pr.get(f'{stage}_hours'), 'hours')}" for stage in STAGES)
    measure = "lead time" if pr.get("measure") == "lead_time_hours" else "cycle time"
    return f"- {link}: {measure} {fmt_value(pr.get(pr.get('measure') or 'lead_time_hours'), 'hours')} ({stages})"


def _deployment(dep: Mapping[str, Any], title_length: int) -> str:
    what = f"deployment {markdown_text(dep['deployment'])}"
    if dep.get("sha"):
        what += f" ({markdown_text(dep['sha'])})"
    why = [markdown_link(shorten(i.get("title"), title_length) or f"incident {i['incident_id']}", i.get("url"))
           for i in dep.get("incidents") or []]
    if dep.get("reverted"):
        why.append("reverted")
    reason = ", ".join(why) or f"status {markdown_text(dep.get('status'))}"
    return f"- {what}, finished {str(dep['finished_at'])[:16].replace('T', ' ')} UTC: {reason}"


def revised_line(revisions: Sequence[Mapping[str, Any]]) -> str:
    """`**Revised since posted:** lead time, median of 2026-W46 30.0 h → 34.5 h; …`."""
    if not revisions:
        return ""
    parts = [f"{r['label'].lower()} of {r['week']} {fmt_value(r['posted'], r['unit'])} → "
             f"{fmt_value(r['now'], r['unit'])}" for r in revisions]
    return "**Revised since posted:** " + "; ".join(parts) + "."
