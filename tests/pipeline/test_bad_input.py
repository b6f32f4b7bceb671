"""Generated bad input: every override set ends in one line naming the field, exit 2."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings

from pipeline.answer import main as answer_main
from tests.strategies import bad_override_sets


def run_main(main, argv):
    err, out = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        pytest.raises(SystemExit) as exited,
    ):
        main(argv)
    return exited.value.code, out.getvalue(), err.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad_override_sets)
def test_asi_answer_rejects_bad_overrides_in_one_line(case):
    argv, field = case
    code, out, err = run_main(answer_main, argv)
    assert code == 2, (argv, err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    assert field in err, (field, err)
