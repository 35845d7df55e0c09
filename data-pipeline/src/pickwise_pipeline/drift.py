"""``drift``: PSI and KS between a reference window and a recent window of logged impressions (decision 1008).

Signals, all from the ``impressions`` table (migration 0006) of search/recommendation responses:
- ``brand``: the brand mix of the parsed query constraints (PSI; a query without a brand counts as ``(none)``);
- ``price_band``: the price-band mix of the constraints (PSI; without a named band, the band of price_max, else
  of price_min, else ``(none)``);
- ``ranker_score``: the top-k scores the pages were ordered by (PSI on the reference's deciles + two-sample KS);
- ``ctr``: per-impression click indicators (a click on a shown item with the impression's ``request_id``, as the
  experiment statistics count it) — PSI of clicked/not clicked + two-sample KS.
A signal with fewer than ``min_rows`` impressions in either window gets no value (and the report says why): too little
data is not drift. PSI reading: < 0.1 no material change, 0.1–0.25 moderate, > 0.25 significant (alerted).

The monitor process calls :func:`drift_job` periodically; it updates the ``pickwise_drift_*`` gauges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import asyncpg
import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from pydantic import Field
from scipy import stats

from pickwise_common import postgres as pg
from pickwise_common.settings import PickwiseSettings
from pickwise_pipeline.catalog import price_band
from pickwise_pipeline.settings import PipelineSettings

SIGNALS = ("brand", "price_band", "ranker_score", "ctr")
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
PSI_EPSILON = 1e-4  # share given to a bin that is empty in one window, so PSI stays finite
NONE = "(none)"
QUERY_ENDPOINTS = ("search", "recommendations")

# The window's search/recommendation impressions (a 5xx page showed nothing). Above max_rows the window is
# sampled by a hash of request_id ($6 = the share kept): spread over the whole window (not its newest part), and
# the same rows on every run over the same window.
_WINDOW_FILTER = """
FROM impressions i
WHERE i.ts >= $1 AND i.ts < $2 AND i.endpoint = ANY($3::text[]) AND i.status < 500
  AND ($4::text IS NULL OR i.catalog = $4)
"""
COUNT_SQL = "SELECT count(*)" + _WINDOW_FILTER
SAMPLE_BUCKETS = 1 << 20
WINDOW_SQL = """
SELECT COALESCE(i.payload -> 'constraints', '{}'::jsonb) AS constraints,
       i.interleaving,
       (SELECT array_agg((it ->> 'score')::float8)
          FROM jsonb_array_elements(i.items) AS it
         WHERE it ->> 'score' IS NOT NULL AND (it ->> 'position')::int < $5) AS scores,
       EXISTS (SELECT 1 FROM events e
                WHERE e.request_id = i.request_id AND e.type = 'click'
                  AND i.items @> jsonb_build_array(jsonb_build_object('item_id', e.item_id))) AS clicked
""" + _WINDOW_FILTER + f"""
  AND ($6::float8 >= 1
       OR (hashtext(i.request_id)::bigint & {SAMPLE_BUCKETS - 1}) < $6 * {SAMPLE_BUCKETS})
"""


class DriftSettings(PickwiseSettings):
    """The periodic drift job's settings (``PICKWISE_DRIFT_*``), shared by the CLI defaults and the monitor."""

    drift_interval_s: float = Field(default=300.0, gt=0)
    drift_reference_s: float = Field(default=7 * 86400.0, gt=0)
    drift_current_s: float = Field(default=3600.0, gt=0)
    drift_min_rows: int = Field(default=200, ge=1)
    drift_bins: int = Field(default=10, ge=2)
    drift_top_k: int = Field(default=10, ge=1)
    drift_max_rows: int = Field(default=50_000, ge=1)
    drift_catalog: str | None = None


# ---- PSI and KS (pure) -----------------------------------------------------------------------------------------

def psi(reference: Mapping[str, float], current: Mapping[str, float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two histograms (counts by bin, same or different bins):
    sum over bins of (c - r) * ln(c / r) on shares, a bin empty on one side taking ``epsilon``."""
    ref_total, cur_total = sum(reference.values()), sum(current.values())
    if ref_total <= 0 or cur_total <= 0:
        raise ValueError("PSI needs at least one value in each window")
    value = 0.0
    for key in set(reference) | set(current):
        r = max(reference.get(key, 0) / ref_total, epsilon)
        c = max(current.get(key, 0) / cur_total, epsilon)
        value += (c - r) * math.log(c / r)
    return value


def quantile_edges(reference: Sequence[float], bins: int) -> list[float]:
    """Inner bin edges at the reference's quantiles (deduplicated: tied values share a bin)."""
    if not reference:
        raise ValueError("quantile bins need reference values")
    inner = np.quantile(np.asarray(reference, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
    return sorted({float(edge) for edge in inner})


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> dict[str, int]:
    """Counts per bin: bin i holds edges[i-1] < v <= edges[i] (bin 0 everything up to the first edge)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), np.asarray(values, dtype=float), side="left")
    return {str(k): int(v) for k, v in Counter(index.tolist()).items()}


def numeric_psi(reference: Sequence[float], current: Sequence[float], bins: int) -> float:
    """PSI of a numeric signal on quantile bins of the reference (each bin ~1/bins of the reference)."""
    edges = quantile_edges(reference, bins)
    return psi(bin_counts(reference, edges), bin_counts(current, edges))


def ks(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov: (statistic, p-value)."""
    result = stats.ks_2samp(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))
    return float(result.statistic), float(result.pvalue)


def psi_level(value: float) -> str:
    if value < PSI_MODERATE:
        return "stable"
    return "moderate" if value <= PSI_SIGNIFICANT else "significant"


# ---- what an impression contributes (pure) ---------------------------------------------------------------------

def brand_values(constraints: Mapping[str, Any]) -> list[str]:
    """The brands a query named (lower case, each once), or ``[(none)]``."""
    raw = constraints.get("brands") or constraints.get("brand") or []
    brands = [raw] if isinstance(raw, str) else list(raw)
    found = sorted({str(b).strip().lower() for b in brands if str(b).strip()})
    return found or [NONE]


def price_band_value(constraints: Mapping[str, Any]) -> str:
    """The query's price band: the named one (first of a list), else the band of price_max, else of price_min."""
    named = constraints.get("price_band") or constraints.get("price_bands")
    if isinstance(named, list):
        named = named[0] if named else None
    if named:
        return str(named).lower()
    for key in ("price_max", "price_min"):
        value = constraints.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return price_band(float(value))
    return NONE


@dataclass
class WindowSample:
    """One window's values per signal."""

    impressions: int = 0  # the rows used (a sample of the window when it is large)
    window_impressions: int = 0  # all the window holds
    brands: list[str] = field(default_factory=list)
    price_bands: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)
    scored_impressions: int = 0  # the rows of ranker_score: a page's scores are not independent values

    def add(self, constraints: Mapping[str, Any], scores: Iterable[float] | None, clicked: bool,
            interleaved: bool = False) -> None:
        self.impressions += 1
        self.brands.extend(brand_values(constraints))
        self.price_bands.append(price_band_value(constraints))
        # an interleaved page mixes two rankers' scores: not one ranker's score distribution
        if scores is not None and not interleaved:
            values = [float(s) for s in scores if s is not None and math.isfinite(float(s))]
            self.scores.extend(values)
            self.scored_impressions += 1 if values else 0
        self.clicks.append(1 if clicked else 0)


@dataclass
class SignalDrift:
    signal: str
    reference_rows: int
    current_rows: int
    psi: float | None = None
    level: str | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    note: str | None = None


def _rows(sample: WindowSample, signal: str) -> int:
    return {"brand": sample.impressions, "price_band": sample.impressions, "ranker_score": sample.scored_impressions,
            "ctr": len(sample.clicks)}[signal]


def compare(reference: WindowSample, current: WindowSample, *, min_rows: int, bins: int) -> list[SignalDrift]:
    """PSI (and KS for numeric signals) per signal; no value where either window has fewer than min_rows."""
    out = []
    for signal in SIGNALS:
        drift = SignalDrift(signal, _rows(reference, signal), _rows(current, signal))
        if min(drift.reference_rows, drift.current_rows) < max(min_rows, 1):
            drift.note = f"too few rows (need {min_rows} in each window)"
            out.append(drift)
            continue
        if signal == "brand":
            drift.psi = psi(Counter(reference.brands), Counter(current.brands))
        elif signal == "price_band":
            drift.psi = psi(Counter(reference.price_bands), Counter(current.price_bands))
        elif signal == "ranker_score":
            drift.psi = numeric_psi(reference.scores, current.scores, bins)
            drift.ks_statistic, drift.ks_pvalue = ks(reference.scores, current.scores)
        else:
            ref = Counter(str(c) for c in reference.clicks)
            cur = Counter(str(c) for c in current.clicks)
            drift.psi = psi(ref, cur)
            drift.ks_statistic, drift.ks_pvalue = ks(reference.clicks, current.clicks)
        drift.level = psi_level(drift.psi)
        out.append(drift)
    return out


# ---- windows ---------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration_s(text: str) -> float:
    """'7d' -> 604800.0, '1h' -> 3600.0, '90s', '30m', '2w'."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a positive duration like 90s, 30m, 1h, 7d or 2w")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def relative_windows(now: datetime, reference_s: float, current_s: float) -> tuple[Window, Window]:
    """current = the last current_s before now; reference = the reference_s just before it."""
    current = Window(now - timedelta(seconds=current_s), now)
    return Window(current.start - timedelta(seconds=reference_s), current.start), current


# ---- Postgres --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowRows:
    """A window's rows as Postgres returned them (decoded into a sample off the event loop)."""

    total: int
    rows: list[asyncpg.Record]


async def fetch_window(conn: asyncpg.Connection | asyncpg.Pool, window: Window, *, catalog: str | None = None,
                       top_k: int = 10, max_rows: int = 50_000) -> WindowRows:
    """The window's search/recommendation impressions (status < 500), a hash sample of about ``max_rows`` of them
    when it holds more."""
    endpoints = list(QUERY_ENDPOINTS)
    total = int(await conn.fetchval(COUNT_SQL, window.start, window.end, endpoints, catalog) or 0)
    share = 1.0 if total <= max_rows else max_rows / total
    return WindowRows(total, await conn.fetch(WINDOW_SQL, window.start, window.end, endpoints, catalog, top_k, share))


def sample_of(rows: WindowRows) -> WindowSample:
    sample = WindowSample(window_impressions=rows.total)
    for row in rows.rows:
        constraints = row["constraints"]
        if isinstance(constraints, str):
            constraints = json.loads(constraints)
        sample.add(constraints if isinstance(constraints, dict) else {}, row["scores"], row["clicked"],
                   row["interleaving"])
    return sample


@dataclass
class DriftReport:
    reference: Window
    current: Window
    reference_rows: int
    current_rows: int
    signals: list[SignalDrift]
    reference_impressions: int | None = None  # all the window holds; rows is what was used (sampled above max)
    current_impressions: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference.as_dict() | {"rows": self.reference_rows,
                                                         "impressions": self.reference_impressions},
                "current": self.current.as_dict() | {"rows": self.current_rows,
                                                     "impressions": self.current_impressions},
                "thresholds": {"psi_moderate": PSI_MODERATE, "psi_significant": PSI_SIGNIFICANT},
                "signals": [asdict(s) for s in self.signals]}


async def measure(conn: asyncpg.Connection | asyncpg.Pool, reference: Window, current: Window, *,
                  settings: DriftSettings) -> DriftReport:
    """Both windows from Postgres, then the statistics in a worker thread (they are CPU work: the monitor's event
    loop keeps answering scrapes and health checks meanwhile)."""
    options = {"catalog": settings.drift_catalog, "top_k": settings.drift_top_k, "max_rows": settings.drift_max_rows}
    ref_rows = await fetch_window(conn, reference, **options)
    cur_rows = await fetch_window(conn, current, **options)

    def compute() -> DriftReport:
        ref, cur = sample_of(ref_rows), sample_of(cur_rows)
        signals = compare(ref, cur, min_rows=settings.drift_min_rows, bins=settings.drift_bins)
        return DriftReport(reference, current, ref.impressions, cur.impressions, signals, ref.window_impressions,
                           cur.window_impressions)

    return await anyio.to_thread.run_sync(compute)


# ---- metrics and the monitor's job ------------------------------------------------------------------------------

class DriftMetrics:
    """The ``pickwise_drift_*`` gauges. A signal without a value has no series (removed), not a stale one."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.psi = Gauge("pickwise_drift_psi", "PSI of a signal, reference window vs current window",
                         ["signal"], registry=registry)
        self.ks_statistic = Gauge("pickwise_drift_ks_statistic", "Two-sample KS statistic, reference vs current",
                                  ["signal"], registry=registry)
        self.ks_pvalue = Gauge("pickwise_drift_ks_pvalue", "Two-sample KS p-value, reference vs current",
                               ["signal"], registry=registry)
        self.window_rows = Gauge("pickwise_drift_window_rows", "Impressions in the drift job's window",
                                 ["window"], registry=registry)
        self.last_run = Gauge("pickwise_drift_last_run_timestamp_seconds",
                              "When the drift job last finished (Unix time)", registry=registry)

    def publish(self, report: DriftReport, finished_at_s: float | None = None) -> None:
        self.window_rows.labels(window="reference").set(report.reference_rows)
        self.window_rows.labels(window="current").set(report.current_rows)
        for s in report.signals:
            _set_or_remove(self.psi, s.signal, s.psi)
            _set_or_remove(self.ks_statistic, s.signal, s.ks_statistic)
            _set_or_remove(self.ks_pvalue, s.signal, s.ks_pvalue)
        self.last_run.set(time.time() if finished_at_s is None else finished_at_s)


def _set_or_remove(gauge: Gauge, signal: str, value: float | None) -> None:
    if value is None:
        try:
            gauge.remove(signal)
        except KeyError:
            pass  # never had a value
    else:
        gauge.labels(signal=signal).set(value)


async def drift_job(pool: asyncpg.Pool, metrics: DriftMetrics, settings: DriftSettings,
                    now: datetime | None = None) -> DriftReport:
    """One run of the periodic job: the relative windows ending now, measured and published."""
    reference, current = relative_windows(now or datetime.now(UTC), settings.drift_reference_s,
                                          settings.drift_current_s)
    report = await measure(pool, reference, current, settings=settings)
    metrics.publish(report)
    return report


# ---- CLI -------------------------------------------------------------------------------------------------------

def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def windows_from_args(args: argparse.Namespace, now: datetime) -> tuple[Window, Window]:
    """Explicit bounds when any is given (then --reference-from/--reference-to/--current-from are required,
    --current-to defaults to now), else the relative --reference/--current durations. ValueError names the flag."""
    explicit = {"--reference-from": args.reference_from, "--reference-to": args.reference_to,
                "--current-from": args.current_from, "--current-to": args.current_to}
    if any(explicit.values()):
        parsed: dict[str, datetime | None] = {}
        for flag, text in explicit.items():
            if text is None:
                if flag != "--current-to":
                    raise ValueError(f"{flag}: required with explicit window bounds")
                parsed[flag] = now
                continue
            try:
                parsed[flag] = _timestamp(text)
            except ValueError:
                raise ValueError(f"{flag}: {text!r} is not an ISO 8601 timestamp") from None
        reference = Window(parsed["--reference-from"], parsed["--reference-to"])  # type: ignore[arg-type]
        current = Window(parsed["--current-from"], parsed["--current-to"])  # type: ignore[arg-type]
        for flag, window in (("--reference-to", reference), ("--current-to", current)):
            if window.end <= window.start:
                raise ValueError(f"{flag}: must be after the window's start")
        return reference, current
    durations = {}
    for flag, text in (("--reference", args.reference), ("--current", args.current)):
        try:
            durations[flag] = parse_duration_s(text)
        except ValueError as exc:
            raise ValueError(f"{flag}: {exc}") from None
    return relative_windows(now, durations["--reference"], durations["--current"])


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _window_line(name: str, window: Window, rows: int, impressions: int | None) -> str:
    sampled = f" (a sample of {impressions})" if impressions is not None and impressions > rows else ""
    return (f"{name:<10}{window.start:%Y-%m-%d %H:%M} .. {window.end:%Y-%m-%d %H:%M} UTC: "
            f"{rows} impressions{sampled}")


def render(report: DriftReport) -> str:
    lines = [_window_line("reference", report.reference, report.reference_rows, report.reference_impressions),
             _window_line("current", report.current, report.current_rows, report.current_impressions),
             f"{'signal':<14}{'ref rows':>10}{'cur rows':>10}{'PSI':>10}  {'level':<12}{'KS D':>8}{'KS p':>11}  note"]
    for s in report.signals:
        lines.append(f"{s.signal:<14}{s.reference_rows:>10}{s.current_rows:>10}{_fmt(s.psi, '.4f'):>10}  "
                     f"{s.level or '-':<12}{_fmt(s.ks_statistic, '.4f'):>8}{_fmt(s.ks_pvalue, '.3g'):>11}  "
                     f"{s.note or ''}".rstrip())
    lines.append(f"PSI < {PSI_MODERATE}: stable; {PSI_MODERATE}-{PSI_SIGNIFICANT}: moderate; "
                 f"> {PSI_SIGNIFICANT}: significant")
    return "\n".join(lines)


async def _run(settings: DriftSettings, reference: Window, current: Window) -> DriftReport:
    pool = await pg.create_pool(PipelineSettings(), migrate=True)
    try:
        return await measure(pool, reference, current, settings=settings)
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    settings = DriftSettings()
    updates: dict[str, Any] = {}
    for flag, name, value in (("--min-rows", "drift_min_rows", args.min_rows), ("--bins", "drift_bins", args.bins),
                              ("--top-k", "drift_top_k", args.top_k)):
        if value is not None:
            if value < (2 if name == "drift_bins" else 1):
                print(f"{flag}: must be at least {2 if name == 'drift_bins' else 1}", file=sys.stderr)
                return 2
            updates[name] = value
    if args.catalog is not None:
        updates["drift_catalog"] = args.catalog
    settings = settings.model_copy(update=updates)
    try:
        reference, current = windows_from_args(args, datetime.now(UTC))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    report = asyncio.run(_run(settings, reference, current))
    print(json.dumps(report.as_dict(), default=str) if args.json else render(report))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("drift", help="PSI/KS of query constraints, ranker scores and CTR: reference "
                                                 "window vs current window of logged impressions")
    parser.add_argument("--reference", default="7d", help="length of the reference window before the current "
                                                          "one (90s, 30m, 1h, 7d, 2w; default 7d)")
    parser.add_argument("--current", default="1h", help="length of the current window ending now (default 1h)")
    parser.add_argument("--reference-from", default=None, help="explicit bounds (ISO 8601, UTC if no offset) "
                                                               "instead of the durations")
    parser.add_argument("--reference-to", default=None)
    parser.add_argument("--current-from", default=None)
    parser.add_argument("--current-to", default=None, help="default: now")
    parser.add_argument("--catalog", default=None, help="only this catalog's impressions (default: all)")
    parser.add_argument("--min-rows", type=int, default=None,
                        help="fewer impressions in a window: no value for that signal (default 200)")
    parser.add_argument("--bins", type=int, default=None, help="quantile bins of ranker scores (default 10)")
    parser.add_argument("--top-k", type=int, default=None, help="scores of the first k positions (default 10)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
