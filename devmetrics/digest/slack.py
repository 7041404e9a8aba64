"""The digest as a short Slack mrkdwn message: the all-repos comparison and the week's incidents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devmetrics.digest.figures import fmt_change, fmt_figure
from devmetrics.safe_text import slack_link, slack_text


def render_slack(digest: Mapping[str, Any]) -> str:
    lines = [f"*{slack_text(digest['title'])}* (vs {digest['previous_week']})"]
    for row in digest["all"]["comparison"]:
        if row["this"] is None and row["previous"] is None:
            continue
        lines.append(f"• {row['label']}: *{fmt_figure(row['this'], row.get('n_this'), row['unit'])}* "
                     f"({fmt_change(row)})")
    for incident in digest["all"]["incidents"]:
        lines.append(f"• Incident: {slack_link(incident['title'], incident.get('url'))} "
                     f"({slack_text(incident['repo'])})")
    return "\n".join(lines)
