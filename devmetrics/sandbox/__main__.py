"""Serve the sandbox forge standalone: `python -m devmetrics.sandbox [--port N]`.

Prints its base URL on the first line, then serves until interrupted (tests that kill a
sync process use it so the forge outlives the sync; `GET <url>/_sandbox/requests` tells them
how many requests it has answered, to kill the sync at a chosen request).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import build_dataset


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devmetrics.sandbox")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--now", help="ISO time the dataset is relative to (default: now)")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now) if args.now else None
    sandbox, registries = build_sandbox(build_dataset(now=now), port=args.port)
    with sandbox:
        print(sandbox.url, flush=True)
        for ecosystem, url in sorted(registries.items()):
            print(f"{ecosystem} {url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)


main()
