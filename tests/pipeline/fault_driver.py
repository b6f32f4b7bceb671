"""``asi-sweep`` with slowed commits, for the killed-driver tests.

    python -m tests.pipeline.fault_driver DELAY [asi-sweep arguments...]

The driver is the real one (:func:`pipeline.cli.sweep.main`, what the console
script runs); the only change is that each commit waits ``DELAY`` seconds
between writing a part's temporary file and renaming it. A sweep of small
chunks then commits a part every ``DELAY`` seconds or so, which gives a test
polling the store room to kill the driver between any two parts, or in the
middle of a commit (the temporary file written, the rename not done). SIGINT
gets Python's usual handler even if the test's own process ignores it.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from asi_slowdown.pipeline.cli.sweep import main
from asi_slowdown.pipeline.store import parts as store


def slowed(publish: Callable[[Path, Path], None], delay: float) -> Callable[[Path, Path], None]:
    """``publish`` (the rename that commits a part), ``delay`` seconds late."""

    def late_publish(tmp: Path, final: Path) -> None:
        time.sleep(delay)
        publish(tmp, final)

    return late_publish


if __name__ == "__main__":
    # Interruptible even when the test runs where SIGINT is ignored (nohup, a script's
    # background job), whose children would inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    store._publish = slowed(store._publish, float(sys.argv[1]))
    main(sys.argv[2:])
