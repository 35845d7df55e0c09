"""make report: charts rendered from small fixture JSON files are real PNG images of the expected size."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pickwise_pipeline.report import render

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
CHARTS = {"latency-vs-concurrency.png", "cpu-per-request.png", "ndcg-by-kind.png", "click-to-visible.png",
          "cf-by-method.png"}


def test_every_chart_is_a_valid_png(tmp_path: Path) -> None:
    written = render(FIXTURES, tmp_path / "img", note=lambda _line: None)
    assert {p.name for p in written} == CHARTS
    for path in written:
        with Image.open(path) as image:
            image.verify()  # raises on a truncated or corrupt file
        with Image.open(path) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert width >= 600 and height >= 300
            assert len(image.getcolors(maxcolors=1 << 20) or []) > 10  # drawn, not a blank canvas


def test_same_json_gives_the_same_bytes(tmp_path: Path) -> None:
    first = render(FIXTURES, tmp_path / "a", note=lambda _line: None)
    second = render(FIXTURES, tmp_path / "b", note=lambda _line: None)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_missing_inputs_are_skipped_with_a_reason(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(FIXTURES / "eval-retriever.json", reports)
    notes: list[str] = []
    written = render(reports, tmp_path / "img", note=notes.append)
    assert [p.name for p in written] == ["ndcg-by-kind.png"]
    assert any("make bench" in n for n in notes)
    assert any("make bench-click" in n for n in notes)
    assert any("make eval-cf" in n for n in notes)


def test_bench_without_cpu_figures_skips_only_that_chart(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    bench = json.loads((FIXTURES / "bench.json").read_text())
    for row in bench["results"]:
        row.pop("cpu_ms_per_request")
    (reports / "bench.json").write_text(json.dumps(bench))
    notes: list[str] = []
    written = render(reports, tmp_path / "img", note=notes.append)
    assert [p.name for p in written] == ["latency-vs-concurrency.png"]
    assert any("cpu_ms_per_request" in n for n in notes)
