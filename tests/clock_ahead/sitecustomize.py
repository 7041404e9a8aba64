"""CI's second run: every Python process starts with its system clock moved ahead.

.ci/run puts this folder on PYTHONPATH with DEVMETRICS_TEST_CLOCK_AHEAD_DAYS set, so the
test processes, the CLI and sandbox subprocesses they start, all run N days in the future
(time-machine moves time.time, datetime.now and date.today; the clock keeps ticking).
Nothing may depend on that: devmetrics reads "now" through devmetrics.clock, which the
suite pins (tests/conftest.py). tests/conftest.py checks that the move took effect.
"""

import os

_days = os.environ.get("DEVMETRICS_TEST_CLOCK_AHEAD_DAYS")
if _days:
    try:
        import time_machine
    except ImportError:  # an interpreter outside the test venv (scripts/_venv.sh's version check)
        time_machine = None
    if time_machine is not None:
        from datetime import UTC, datetime, timedelta

        time_machine.travel(datetime.now(UTC) + timedelta(days=int(_days)), tick=True).start()
