from __future__ import annotations

from devmetrics.cli import main

main()
