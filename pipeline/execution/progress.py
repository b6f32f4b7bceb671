"""Progress on stderr: a live bar on a terminal, plain lines in a log.

A sweep's points (and the grid's expansion) here; the report's Dask tasks in
:func:`pipeline.execution.scheduler.progress`, with the same rule.

tqdm redraws its bar in place with carriage returns. A terminal shows one
moving line; a log file (cron, CI, ``2> sweep.log``) keeps every redraw
glued into one long line that ``less`` and ``grep`` cannot read. So the bar
is drawn only when stderr is a terminal; otherwise :class:`LineProgress`
prints a plain line (no ``\\r``) each time another :data:`LINE_PERCENT` of
the points is done, and at least every :data:`LINE_SECONDS` while none is::

    asi-sweep: 96/320 points (30 %), 41.2 pt/s, 0:02 elapsed, ETA 0:05
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

LINE_PERCENT = 10
"""A plain progress line every time this many more percent of the points are done [%]."""

LINE_SECONDS = 60.0
"""...and at least this often while points are running, so a stuck sweep shows in its log [s]."""


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, closed streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def clock_text(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` for a duration [s]."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineProgress:
    """The part of tqdm's interface a sweep uses (``update``, ``refresh``,
    ``set_postfix``, ``close``), printed as whole lines for logs."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        desc: str = "asi-sweep",
        unit: str = "points",
        rate_unit: str = "pt",
        percent: float = LINE_PERCENT,
        seconds: float = LINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.n = 0
        self.stream = stream
        self.desc = desc
        self.unit = unit
        self.rate_unit = rate_unit
        self.percent = percent
        self.seconds = seconds
        self.clock = clock
        self.postfix: dict[str, object] = {}
        self._start = clock()
        self._last_time = self._start
        self._last_n = 0
        self._last_step = 0

    def _step(self) -> int:
        """How many whole ``percent`` steps of the total are done."""
        return int(100 * self.n / (self.total * self.percent)) if self.total else 0

    def update(self, n: int = 1) -> None:
        """Count ``n`` more points done; print a line if another step is complete."""
        self.n += n
        if self._step() > self._last_step:
            self._print()
        else:
            self.refresh()

    def refresh(self) -> None:
        """Print a line if none was printed for ``seconds`` (tqdm's redraw, rate-limited)."""
        if self.clock() - self._last_time >= self.seconds:
            self._print()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        """Counters shown at the end of the next line (``failed=3``)."""
        self.postfix.update(values)
        if refresh:
            self.refresh()

    def close(self) -> None:
        """A last line if points were done since the previous one (an interrupted sweep's)."""
        if self.n != self._last_n:
            self._print()

    def line(self) -> str:
        """The progress line for the current count."""
        elapsed = self.clock() - self._start
        share = 100 * self.n / self.total if self.total else 100.0
        text = f"{self.desc}: {self.n}/{self.total} {self.unit} ({share:.0f} %)"
        if elapsed > 0 and self.n:
            rate = self.n / elapsed
            text += f", {rate:.1f} {self.rate_unit}/s, {clock_text(elapsed)} elapsed"
            if self.n < self.total:
                text += f", ETA {clock_text((self.total - self.n) / rate)}"
        for key, value in self.postfix.items():
            text += f", {key} {value}"
        return text

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_time = self.clock()
        self._last_n = self.n
        self._last_step = self._step()


def progress_bar(
    total: int,
    enabled: bool,
    stream: TextIO | None = None,
    *,
    desc: str = "asi-sweep",
    unit: str = "points",
    rate_unit: str = "pt",
    percent: float = LINE_PERCENT,
    seconds: float = LINE_SECONDS,
):
    """What reports a sweep's progress on ``stream`` (default stderr), or None if disabled.

    tqdm's bar on a terminal, :class:`LineProgress` anywhere else (a line per
    ``percent`` of ``total`` done, and at least every ``seconds``). ``unit``
    names what is counted in lines, ``rate_unit`` in rates (tqdm's ``unit``).
    """
    if not enabled:
        return None
    stream = stream if stream is not None else sys.stderr
    if not is_terminal(stream):
        return LineProgress(
            total, stream, desc=desc, unit=unit, rate_unit=rate_unit, percent=percent,
            seconds=seconds,
        )  # fmt: skip
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=rate_unit,
        unit_scale=True,
        desc=desc,
        file=stream,
        mininterval=0.5,
        smoothing=0.1,
        dynamic_ncols=True,
    )
