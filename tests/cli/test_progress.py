"""Progress when the output is not a terminal: plain lines with the count, the share and the time left."""

from __future__ import annotations

import re
import time

import pytest

from userloop.cli.output import Out, ProgressLines, duration, progress_seconds


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.4, "59s"), (80, "1m20s"), (3725, "1h02m")])
def test_durations_read_in_human_units(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_line_has_the_count_of_the_total_the_share_and_an_eta() -> None:
    lines = ProgressLines("simulating and loading", 180, "day", 60)
    assert lines.line() == "simulating and loading: day 0/180 (0%), 0s elapsed"  # no ETA before any progress
    lines.advance(40)
    assert re.fullmatch(r"simulating and loading: day 40/180 \(22%\), \d+s elapsed, ETA \d+s", lines.line())
    assert lines.line(final=True).startswith("simulating and loading: day 40/180 (22%), done in ")


def test_lines_come_periodically_while_a_step_runs_and_once_at_its_end(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USERLOOP_PROGRESS_SECONDS", "0.05")
    assert progress_seconds() == 0.05
    with Out(False).progress("importing events", total=None, unit="record") as advance:
        advance(1200)
        time.sleep(0.4)
    err = capsys.readouterr().err.splitlines()
    assert len(err) >= 3, err
    assert all(line.startswith("importing events: 1,200 records so far") for line in err)
    assert err[-1].endswith("/ 完成")


def test_a_quick_step_prints_nothing_and_json_never_does(capsys: pytest.CaptureFixture[str]) -> None:
    with Out(False).progress("quick", total=3) as advance:
        advance(3)
    with Out(True).progress("json", total=3) as advance:
        advance(3)
        time.sleep(0.01)
    assert capsys.readouterr() == ("", "")
