"""The digest as a short Slack mrkdwn message: the all-repos comparison and the week's incidents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devmetrics.digest.figures import fmt_change, fmt_figure, shorten
from devmetrics.safe_text import slack_link, slack_text


def render_slack(digest: Mapping[str, Any]) -> str:
    """The all-repos figures with their verdicts, the incidents, and links to the whole digest."""
    lines = [f"*{slack_text(digest['title'])}* (vs {digest['previous_week']})"]
    links = [slack_link(text, digest.get(key)) for key, text in
             (("posted_url", "The whole digest"), ("dashboard_url", "the dashboard")) if digest.get(key)]
    if links:
        lines.append(" · ".join(links))
    for row in digest["all"]["comparison"]:
        if row["this"] is None and row["previous"] is None:
            continue
        lines.append(f"• {row['label']}: *{fmt_figure(row['this'], row.get('n_this'), row['unit'])}* "
                     f"({fmt_change(row)})")
    for incident in digest["all"]["incidents"]:
        title = shorten(incident["title"], int(digest.get("title_length", 80)))
        lines.append(f"• Incident: {slack_link(title, incident.get('url'))} "
                     f"({slack_text(incident['repo'])})")
    return "\n".join(lines)
