"""Dependency freshness (metrics.md §6): manifests, registries, libyears, majors behind.

Entry points: `freshness.evaluate_repo` and `freshness.save_freshness` (sync),
`freshness.latest_snapshot` (report), `report.list_dependencies` / `render_dependencies`
(`devmetrics deps`).
"""
