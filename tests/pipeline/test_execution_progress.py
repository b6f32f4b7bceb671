"""A sweep's progress: tqdm's bar on a terminal only, plain lines in logs (no Ray here)."""

from __future__ import annotations

import io

from asi_slowdown.pipeline.execution.progress import LineProgress, progress_bar


class Clock:
    """A hand-driven clock [s]."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_ten_percent_and_no_carriage_return():
    log, clock = io.StringIO(), Clock()
    progress = LineProgress(200, log, clock=clock)
    for _ in range(50):  # 50 chunks of 4 points, 0.1 s each
        clock.now += 0.1
        progress.update(4)
    progress.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10, lines
    assert lines[0].startswith("asi-sweep: 20/200 points (10 %), 40.0 pt/s, 0:00 elapsed, ETA 0:04")
    assert lines[-1] == "asi-sweep: 200/200 points (100 %), 40.0 pt/s, 0:05 elapsed"


def test_a_slow_sweep_still_logs_every_minute_and_counts_failures():
    log, clock = io.StringIO(), Clock()
    progress = LineProgress(1000, log, clock=clock)
    progress.update(5)
    assert log.getvalue() == ""  # under 10 %, under a minute
    clock.now = 61.0
    progress.set_postfix(failed=5, refresh=False)
    progress.refresh()  # what dispatch calls while no chunk finishes
    assert (
        log.getvalue()
        == "asi-sweep: 5/1000 points (0 %), 0.1 pt/s, 1:01 elapsed, ETA 3:22:19, failed 5\n"
    )
    progress.refresh()
    assert log.getvalue().count("\n") == 1  # not again before another minute


def test_an_interrupted_sweep_logs_where_it_stopped():
    log = io.StringIO()
    progress = LineProgress(1000, log)
    progress.update(30)
    progress.close()
    assert log.getvalue().startswith("asi-sweep: 30/1000 points (3 %)")


def test_the_bar_is_for_terminals_only():
    assert isinstance(progress_bar(10, True, io.StringIO()), LineProgress)
    assert progress_bar(10, False, io.StringIO()) is None
    screen = Terminal()
    bar = progress_bar(10, True, screen)
    bar.update(10)
    bar.close()
    assert "\r" in screen.getvalue()  # tqdm's redraw: what a terminal is for


def test_other_units_and_steps_for_the_grids_expansion():
    log, clock = io.StringIO(), Clock()
    named = {"desc": "asi-sweep: grid", "unit": "steps", "rate_unit": "step", "percent": 50}
    bar = progress_bar(8, True, log, **named)
    assert isinstance(bar, LineProgress) and (bar.unit, bar.percent) == ("steps", 50)
    progress = LineProgress(8, log, clock=clock, **named)
    for _ in range(8):
        clock.now += 0.5
        progress.update(1)
    assert log.getvalue().splitlines() == [
        "asi-sweep: grid: 4/8 steps (50 %), 2.0 step/s, 0:02 elapsed, ETA 0:02",
        "asi-sweep: grid: 8/8 steps (100 %), 2.0 step/s, 0:04 elapsed",
    ]
