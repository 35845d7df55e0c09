"""Progress reporting: no bar unless on a terminal outside CI, and one summary line in a fixed format."""

import io
import re

import pytest

from pickwise_pipeline import progress
from pickwise_pipeline.progress import Progress, interactive, summary_line, track

pytestmark = pytest.mark.unit

SUMMARY = re.compile(r"^(?P<what>.+): (?P<rows>\d+) rows in (?P<s>\d+\.\d) s \((?P<rate>\d+\.\d)/s\)$")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_summary_line_states_rows_seconds_and_rate() -> None:
    assert summary_line("ingest", 3903, 21.4) == "ingest: 3903 rows in 21.4 s (182.4/s)"


def test_summary_line_of_zero_seconds_has_a_zero_rate() -> None:
    assert summary_line("evaluate", 0, 0.0) == "evaluate: 0 rows in 0.0 s (0.0/s)"


def test_not_interactive_when_output_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not interactive(io.StringIO())


def test_not_interactive_in_ci_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.sys, "stdout", FakeTty())
    monkeypatch.setenv("CI", "true")
    assert not interactive(FakeTty())


def test_interactive_on_a_terminal_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.sys, "stdout", FakeTty())
    monkeypatch.delenv("CI", raising=False)
    assert interactive(FakeTty())


def test_piped_output_gets_only_the_summary_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    stream = io.StringIO()
    for _ in track(range(250), "bench search c=10", stream=stream):
        pass
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    match = SUMMARY.match(lines[0])
    assert match is not None, lines[0]
    assert match["what"] == "bench search c=10"
    assert match["rows"] == "250"


def test_ci_on_a_terminal_gets_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.sys, "stdout", FakeTty())
    monkeypatch.setenv("CI", "1")
    stream = FakeTty()
    with Progress("train-ranker", total=10, stream=stream) as p:
        p.update(10)
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().count("\n") == 1


def test_terminal_gets_a_bar_then_the_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.sys, "stdout", FakeTty())
    monkeypatch.delenv("CI", raising=False)
    stream = FakeTty()
    with Progress("ingest", total=4, stream=stream) as p:
        p.update(4)
    out = stream.getvalue()
    assert "\r" in out  # tqdm redraws the bar in place
    assert SUMMARY.match(out.splitlines()[-1].strip("\r").split("\r")[-1])


def test_leaving_a_loop_early_still_prints_the_rows_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    stream = io.StringIO()
    iterator = track(list(range(10)), "evaluate", stream=stream)
    for n in iterator:
        if n == 2:
            break
    iterator.close()  # type: ignore[attr-defined]
    assert stream.getvalue().startswith("evaluate: 2 rows in ")  # the third was not finished


def test_quiet_progress_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    stream = io.StringIO()
    with Progress("nested", stream=stream, quiet=True) as p:
        p.update(5)
    assert p.rows == 5
    assert stream.getvalue() == ""


def test_a_step_without_summary_still_draws_its_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.sys, "stdout", FakeTty())
    monkeypatch.delenv("CI", raising=False)
    stream = FakeTty()
    with Progress("ingest: embed", total=3, stream=stream, summary=False) as p:
        p.update(3)
    assert "\r" in stream.getvalue()
    assert not SUMMARY.match(stream.getvalue().split("\r")[-1].strip())
