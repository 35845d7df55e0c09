"""``pickwise-pipeline report``: PNG charts from the last ``make eval`` / ``make bench`` / ``make bench-click``
JSON (``.pickwise/reports/``) into ``docs/img/``, for the docs pages and the README.

Charts (each drawn when its input exists, skipped with a note otherwise):
``latency-vs-concurrency.png`` (bench.json: p50/p95 per endpoint and throughput per concurrency),
``cpu-per-request.png`` (bench.json: CPU ms per request of each process, per endpoint),
``ndcg-by-kind.png`` (eval-retriever.json and eval-gateway.json: NDCG@10 per query kind and mode),
``click-to-visible.png`` (bench-click.json: distribution of the click -> visible delay).
Rendering uses matplotlib's Agg canvas directly (no pyplot, no display).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Report = dict[str, Any]
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
# PNG metadata without the matplotlib version, so a re-render of the same JSON gives the same bytes
PNG_METADATA = {"Software": None}


def _figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata=PNG_METADATA)
    return path


def _when(report: Report) -> str:
    return f" ({report['created_at'][:10]})" if report.get("created_at") else ""


def _caches(report: Report) -> str:
    """What the caches were doing (cold: distinct queries; cache-hit), for titles; empty for older reports."""
    return f", caches {report['caches']}" if report.get("caches") else ""


# the sum of the stack's processes is said in the title, not drawn as one more bar
STACK_TOTAL = "stack total"


def latency_vs_concurrency(bench: Report, path: Path) -> Path:
    """p50 (solid) and p95 (dashed) latency, and throughput, against concurrency, one colour per endpoint."""
    rows = bench["results"]
    endpoints = sorted({r["endpoint"] for r in rows})
    figure = _figure(10, 4)
    latency, throughput = figure.subplots(1, 2)
    for colour, endpoint in zip(COLOURS, endpoints, strict=False):
        mine = sorted((r for r in rows if r["endpoint"] == endpoint), key=lambda r: r["concurrency"])
        levels = [r["concurrency"] for r in mine]
        latency.plot(levels, [r["p50_ms"] for r in mine], "o-", color=colour, label=f"{endpoint} p50")
        latency.plot(levels, [r["p95_ms"] for r in mine], "s--", color=colour, label=f"{endpoint} p95")
        throughput.plot(levels, [r["throughput_rps"] for r in mine], "o-", color=colour, label=endpoint)
    levels = sorted({r["concurrency"] for r in rows})
    latency.set(title="Latency", xlabel="concurrent clients", ylabel="ms")
    throughput.set(title="Throughput", xlabel="concurrent clients", ylabel="requests/s")
    for axes in (latency, throughput):
        axes.grid(alpha=0.3)
        axes.set_ylim(bottom=0)
        axes.set_xticks(levels)
        axes.legend(fontsize="small")
    figure.suptitle(f"Gateway under load: make bench{_caches(bench)}{_when(bench)}")
    return _save(figure, path)


def cpu_per_request(bench: Report, path: Path) -> Path | None:
    """CPU ms per request of each process at the highest concurrency of each endpoint (None: not measured)."""
    rows = [r for r in bench["results"] if r.get("cpu_ms_per_request")]
    if not rows:
        return None
    endpoints = sorted({r["endpoint"] for r in rows})
    top = {e: max((r for r in rows if r["endpoint"] == e), key=lambda r: r["concurrency"]) for e in endpoints}
    processes = sorted({p for r in top.values() for p in r["cpu_ms_per_request"] if p != STACK_TOTAL},
                       key=lambda p: -max(r["cpu_ms_per_request"].get(p, 0.0) for r in top.values()))
    figure = _figure(10, 4)
    axes = figure.subplots()
    width = 0.8 / len(endpoints)
    for n, (colour, endpoint) in enumerate(zip(COLOURS, endpoints, strict=False)):
        values = [max(0.0, top[endpoint]["cpu_ms_per_request"].get(p, 0.0)) for p in processes]
        xs = [i + (n - (len(endpoints) - 1) / 2) * width for i in range(len(processes))]
        bars = axes.bar(xs, values, width, color=colour, label=f"{endpoint} (c={top[endpoint]['concurrency']})")
        axes.bar_label(bars, fmt="%.1f", fontsize="x-small")
    axes.set_xticks(range(len(processes)), processes, rotation=20)
    totals = ", ".join(f"{e} {top[e]['cpu_ms_per_request'][STACK_TOTAL]:.1f} ms" for e in endpoints
                       if STACK_TOTAL in top[e]["cpu_ms_per_request"])
    axes.set(ylabel="CPU ms per request", title=f"CPU per request by process: make bench{_caches(bench)}{_when(bench)}"
             + (f"\nstack total: {totals}" if totals else ""))
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def ndcg_by_kind(evaluations: list[Report], path: Path) -> Path | None:
    """NDCG@10 per query kind, one bar per mode (bm25, dense, hybrid from the retriever; gateway end to end)."""
    series: list[tuple[str, dict[str, float]]] = []
    counts: dict[str, int] = {}
    for report in evaluations:
        for mode, kinds in report.get("by_kind", {}).items():
            label = mode if report.get("target") != "gateway" else "gateway (full system)"
            series.append((label, {k: float(v.get("ndcg@10", 0.0)) for k, v in kinds.items()}))
            counts.update({k: int(v.get("queries", 0)) for k, v in kinds.items()})
    if not series:
        return None
    kinds = sorted(counts)
    figure = _figure(11, 4.5)
    axes = figure.subplots()
    width = 0.8 / len(series)
    for n, (colour, (label, values)) in enumerate(zip(COLOURS, series, strict=False)):
        xs = [i + (n - (len(series) - 1) / 2) * width for i in range(len(kinds))]
        axes.bar(xs, [values.get(k, 0.0) for k in kinds], width, color=colour, label=label)
    axes.set_xticks(range(len(kinds)), [f"{k}\n({counts[k]} q)" for k in kinds], fontsize="small")
    # the interesting part is near the top: start the axis just below the lowest bar (0.1 steps)
    lowest = min((v for _, values in series for v in values.values()), default=0.0)
    bottom = max(0.0, math.floor((lowest - 0.05) * 10) / 10)
    axes.set(ylabel="NDCG@10" + (f" (axis from {bottom:.1f})" if bottom > 0 else ""), ylim=(bottom, 1.01),
             title=f"NDCG@10 per query kind: make eval{_when(evaluations[0])}")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(figure, path)


def click_to_visible(click: Report, path: Path) -> Path | None:
    """Histogram of every visible trial's click -> visible delay, with p50 and p90 marked."""
    delays = [float(d) for d in click.get("click_to_visible_ms_all", [])]
    if not delays:
        return None
    summary = click.get("click_to_visible_ms", {})
    figure = _figure(8, 4)
    axes = figure.subplots()
    axes.hist(delays, bins=min(30, max(5, len(delays) // 3)), color=COLOURS[0], edgecolor="white")
    for name, style in (("p50", "-"), ("p90", "--")):
        if name in summary:
            axes.axvline(summary[name], color=COLOURS[3], linestyle=style, label=f"{name} {summary[name]:.0f} ms")
    axes.axvline(1000, color="black", linestyle=":", label="target 1 s")
    axes.set(xlabel="ms from the click to the first response showing it in the top 3", ylabel="trials",
             title=f"Click -> visible: {click.get('visible', len(delays))}/{click.get('trials', len(delays))} "
                   f"trials, result #{click.get('position', '?')} clicked{_when(click)}")
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


CF_TARGETS = {"recall": 0.24, "ndcg": 0.33}  # issue 11's acceptance for the served feed, returning customers


def cf_by_method(evaluations: list[Report], path: Path) -> Path | None:
    """Recall@k and NDCG@k of returning customers per method (baselines, the blend offline, the feed through
    the gateway), with the acceptance lines."""
    methods: list[tuple[str, dict[str, float]]] = []
    k = 20
    for report in evaluations:
        k = int(report.get("k", k))
        for name, segments in report.get("results", {}).items():
            returning = segments.get("returning")
            if returning:
                label = name.replace("_", " ") + (" (public API)" if report.get("target") == "gateway" else "")
                methods.append((label, {m: float(returning.get(m, 0.0)) for m in CF_TARGETS}))
    if not methods:
        return None
    figure = _figure(10, 4.5)
    axes = figure.subplots()
    width = 0.38
    for n, (metric, colour) in enumerate(zip(CF_TARGETS, COLOURS, strict=False)):
        xs = [i + (n - 0.5) * width for i in range(len(methods))]
        axes.bar(xs, [values[metric] for _, values in methods], width, color=colour, label=f"{metric}@{k}")
        axes.axhline(CF_TARGETS[metric], color=colour, linestyle=":", linewidth=1,
                     label=f"target {metric}@{k} {CF_TARGETS[metric]}")
    axes.set_xticks(range(len(methods)), [label for label, _ in methods], fontsize="small", rotation=15)
    axes.set(ylabel="returning customers", title=f"CF feed vs baselines, retail temporal split: make eval-cf"
                                                 f"{_when(evaluations[0])}")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left")
    return _save(figure, path)


def _load(path: Path) -> Report | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def render(reports_dir: Path, out_dir: Path, *, note: Callable[[str], None] = print) -> list[Path]:
    """Every chart whose input is in ``reports_dir``; ``note`` hears what was written or skipped and why."""
    written: list[Path] = []

    def done(name: str, result: Path | None, why_not: str) -> None:
        if result is None:
            note(f"skipped {name}: {why_not}")
        else:
            written.append(result)
            note(f"wrote {result}")

    bench = _load(reports_dir / "bench.json")
    if bench is None:
        note(f"skipped latency-vs-concurrency.png, cpu-per-request.png: no {reports_dir / 'bench.json'} "
             "(run make bench)")
    else:
        done("latency-vs-concurrency.png", latency_vs_concurrency(bench, out_dir / "latency-vs-concurrency.png"), "")
        done("cpu-per-request.png", cpu_per_request(bench, out_dir / "cpu-per-request.png"),
             "bench.json has no cpu_ms_per_request (bench run with --no-cpu or no /metrics reachable)")
    evaluations = [r for r in (_load(reports_dir / f"eval-{t}.json") for t in ("retriever", "gateway")) if r]
    done("ndcg-by-kind.png", ndcg_by_kind(evaluations, out_dir / "ndcg-by-kind.png") if evaluations else None,
         f"no eval-retriever.json / eval-gateway.json with by_kind in {reports_dir} (run make eval)")
    cf_reports = [r for r in (_load(reports_dir / f"eval-cf-{t}.json") for t in ("offline", "gateway")) if r]
    done("cf-by-method.png", cf_by_method(cf_reports, out_dir / "cf-by-method.png") if cf_reports else None,
         f"no eval-cf-offline.json / eval-cf-gateway.json in {reports_dir} (run make eval-cf)")
    click = _load(reports_dir / "bench-click.json")
    done("click-to-visible.png", click_to_visible(click, out_dir / "click-to-visible.png") if click else None,
         f"no bench-click.json with click_to_visible_ms_all in {reports_dir} (run make bench-click)")
    return written


def run(args: argparse.Namespace) -> int:
    written = render(Path(args.reports), Path(args.out), note=lambda line: print(line, file=sys.stderr))
    print(json.dumps({"charts": [str(p) for p in written]}))
    return 0 if written else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="PNG charts from the last eval / bench JSON (docs/img)")
    parser.add_argument("--reports", default=".pickwise/reports", help="folder of eval-*.json, bench*.json")
    parser.add_argument("--out", default="docs/img", help="folder the PNG files are written to")
    parser.set_defaults(func=run)
