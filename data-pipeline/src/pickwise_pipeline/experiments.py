"""Experiment statistics from the impression log (decision 1005b): per variant and per ranker version, CTR,
add-to-cart and purchase rate with Wilson 95 % intervals, a two-proportion z-test against the control variant,
p95 latency and error rate; team-draft interleaving wins per experiment. ``pickwise-pipeline experiment report``.

One SQL serves the report, the monitor's exported metrics and the rollout controller (decision 1000)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from scipy.stats import binomtest, norm

from pickwise_pipeline.settings import PipelineSettings

CONTROL_VARIANT = "A"
CONFIDENCE = 0.95
METRICS = ("ctr", "add_to_cart", "purchase")

# One row per impression with its outcome (≥1 click / add-to-cart / purchase of a shown item, by request_id),
# then grouped per (experiment, variant) and per ranker version in one pass (GROUPING SETS); an interleaved page
# mixes two rankers, so it counts for its variant and for the ranker row "(interleaved)" only. An error is a 5xx
# response or a reranker degradation (the challenger's failure shows there, the page itself still answers 200).
STATS_SQL = """
WITH imp AS (
    SELECT i.event_id, i.request_id, coalesce(i.experiment, '') AS experiment, coalesce(i.variant, '') AS variant,
           CASE WHEN i.interleaving THEN '(interleaved)' ELSE coalesce(i.model_versions->>'ranker', '') END
               AS ranker, i.latency_ms,
           (i.status >= 500 OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(i.degraded) AS r(reason)
                                       WHERE r.reason LIKE 'reranker\\_%')) AS failed,
           i.items
    FROM impressions i
    WHERE i.ts >= $1 AND i.ts < $2 AND ($3::text IS NULL OR i.catalog = $3)
      AND ($4::text[] IS NULL OR i.variant = ANY($4::text[]))
),
outcome AS (
    SELECT imp.event_id,
           bool_or(e.type = 'click') AS clicked,
           bool_or(e.type = 'add_to_cart') AS carted,
           bool_or(e.type = 'purchase') AS purchased
    FROM imp
    JOIN events e ON e.request_id = imp.request_id AND e.type IN ('click', 'add_to_cart', 'purchase')
    WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(imp.items) AS it WHERE it->>'item_id' = e.item_id)
    GROUP BY imp.event_id
)
SELECT GROUPING(imp.experiment, imp.variant) AS by_ranker, imp.experiment, imp.variant, imp.ranker,
       count(*) AS impressions,
       count(*) FILTER (WHERE o.clicked) AS clicked,
       count(*) FILTER (WHERE o.carted) AS carted,
       count(*) FILTER (WHERE o.purchased) AS purchased,
       count(imp.latency_ms) AS timed,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY imp.latency_ms) AS p95_latency_ms,
       count(*) FILTER (WHERE imp.failed) AS errors
FROM imp LEFT JOIN outcome o ON o.event_id = imp.event_id
GROUP BY GROUPING SETS ((imp.experiment, imp.variant), (imp.ranker))
ORDER BY by_ranker, imp.experiment, imp.variant, imp.ranker
"""

# Team-draft interleaving: per interleaved impression, the distinct shown items clicked that team A resp. B
# contributed; the impression is a win for the team with more credited clicks.
INTERLEAVING_SQL = """
WITH imp AS (
    SELECT i.event_id, i.request_id, coalesce(i.experiment, '') AS experiment, i.items
    FROM impressions i
    WHERE i.interleaving AND i.ts >= $1 AND i.ts < $2 AND ($3::text IS NULL OR i.catalog = $3)
),
credit AS (
    SELECT imp.event_id,
           count(DISTINCT e.item_id) FILTER (WHERE it->>'team' = 'A') AS clicks_a,
           count(DISTINCT e.item_id) FILTER (WHERE it->>'team' = 'B') AS clicks_b
    FROM imp
    JOIN events e ON e.request_id = imp.request_id AND e.type = 'click'
    JOIN LATERAL jsonb_array_elements(imp.items) AS it ON it->>'item_id' = e.item_id
    GROUP BY imp.event_id
)
SELECT imp.experiment, count(*) AS impressions,
       count(*) FILTER (WHERE c.clicks_a > c.clicks_b) AS wins_a,
       count(*) FILTER (WHERE c.clicks_b > c.clicks_a) AS wins_b,
       count(*) FILTER (WHERE c.clicks_a = c.clicks_b) AS ties
FROM imp LEFT JOIN credit c ON c.event_id = imp.event_id
GROUP BY imp.experiment
ORDER BY imp.experiment
"""


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson interval (``lower``/``upper`` at ``CONFIDENCE``)."""

    successes: int
    trials: int
    estimate: float
    lower: float
    upper: float


def wilson(successes: int, trials: int) -> Rate:
    """Wilson score interval; no trials -> estimate 0 with the uninformative interval [0, 1]."""
    if trials == 0:
        return Rate(0, 0, 0.0, 0.0, 1.0)
    ci = binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Rate(successes, trials, successes / trials, float(ci.low), float(ci.high))


def two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided pooled two-proportion z-test; None when a side has no trials (nothing to test). Equal
    proportions, including both 0 or both 1, give 1.0."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return float(2 * norm.sf(abs(z)))


def difference_sigma(k1: int, n1: int, k2: int, n2: int) -> float:
    """Standard deviation of p1 − p2 for independent samples (unpooled): sqrt(p1(1−p1)/n1 + p2(1−p2)/n2)."""
    if n1 == 0 or n2 == 0:
        return math.inf
    p1, p2 = k1 / n1, k2 / n2
    return math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)


def sign_test_p_value(wins_a: int, wins_b: int) -> float | None:
    """Two-sided binomial sign test of the interleaving wins (ties left out); None without a decided pair."""
    if wins_a + wins_b == 0:
        return None
    return float(binomtest(wins_b, wins_a + wins_b, 0.5).pvalue)


@dataclass
class GroupStats:
    """One variant (``experiment``/``variant`` set) or one ranker version (``ranker`` set)."""

    experiment: str
    variant: str
    ranker: str
    impressions: int
    clicked: int
    carted: int
    purchased: int
    timed: int
    p95_latency_ms: float | None
    errors: int
    p_value_ctr: float | None = None  # vs the control variant (variants only)

    @property
    def ctr(self) -> Rate:
        return wilson(self.clicked, self.impressions)

    @property
    def add_to_cart(self) -> Rate:
        return wilson(self.carted, self.impressions)

    @property
    def purchase(self) -> Rate:
        return wilson(self.purchased, self.impressions)

    def rate(self, metric: str) -> Rate:
        return {"ctr": self.ctr, "add_to_cart": self.add_to_cart, "purchase": self.purchase}[metric]

    @property
    def error_rate(self) -> float:
        return self.errors / self.impressions if self.impressions else 0.0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body |= {metric: asdict(self.rate(metric)) for metric in METRICS}
        body["error_rate"] = self.error_rate
        return body


@dataclass
class InterleavingStats:
    experiment: str
    impressions: int
    wins_a: int
    wins_b: int
    ties: int

    @property
    def p_value(self) -> float | None:
        return sign_test_p_value(self.wins_a, self.wins_b)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"p_value": self.p_value}


@dataclass
class ExperimentReport:
    since: datetime
    until: datetime
    control: str
    variants: list[GroupStats] = field(default_factory=list)
    rankers: list[GroupStats] = field(default_factory=list)
    interleaving: list[InterleavingStats] = field(default_factory=list)

    def ranker(self, version: str) -> GroupStats | None:
        return next((r for r in self.rankers if r.ranker == version), None)

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "control": self.control,
                "variants": [v.to_json() for v in self.variants], "rankers": [r.to_json() for r in self.rankers],
                "interleaving": [i.to_json() for i in self.interleaving]}


def compare_to_control(variants: list[GroupStats], control: str) -> None:
    """Set each variant's CTR p-value against the control variant of the same experiment."""
    controls = {v.experiment: v for v in variants if v.variant == control}
    for v in variants:
        base = controls.get(v.experiment)
        if base is not None and v is not base:
            v.p_value_ctr = two_proportion_p_value(v.clicked, v.impressions, base.clicked, base.impressions)


async def compute(conn: asyncpg.Connection | asyncpg.Pool, *, since: datetime, until: datetime | None = None,
                  catalog: str | None = None, control: str = CONTROL_VARIANT,
                  variants: list[str] | None = None) -> ExperimentReport:
    """The report over ``[since, until)``; ``variants``: only those variants' impressions (the rollout controller
    compares the challenger with the champion on the control variant)."""
    until = until or datetime.now(UTC)
    report = ExperimentReport(since=since, until=until, control=control)
    for row in await conn.fetch(STATS_SQL, since, until, catalog, variants):
        stats = GroupStats(experiment=row["experiment"] or "", variant=row["variant"] or "",
                           ranker=row["ranker"] or "", impressions=row["impressions"], clicked=row["clicked"],
                           carted=row["carted"], purchased=row["purchased"], timed=row["timed"],
                           p95_latency_ms=row["p95_latency_ms"], errors=row["errors"])
        if row["by_ranker"]:
            stats.experiment = stats.variant = ""
            report.rankers.append(stats)
        else:
            stats.ranker = ""
            report.variants.append(stats)
    compare_to_control(report.variants, control)
    report.interleaving = [InterleavingStats(r["experiment"] or "", r["impressions"], r["wins_a"], r["wins_b"],
                                             r["ties"])
                           for r in await conn.fetch(INTERLEAVING_SQL, since, until, catalog)]
    return report


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_duration_s(text: str) -> float:
    """'90s', '15m', '1h', '7d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"--since: expected a duration like 15m, 1h or 7d, got {text!r}")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _pct(rate: Rate) -> str:
    if rate.trials == 0:
        return "-"
    return f"{100 * rate.estimate:5.2f} [{100 * rate.lower:5.2f}, {100 * rate.upper:5.2f}]"


def _num(value: float | None, fmt: str = "{:.3g}") -> str:
    return "-" if value is None else fmt.format(value)


def render(report: ExperimentReport) -> str:
    """The readable table of ``experiment report``."""
    lines = [f"impressions {report.since:%Y-%m-%d %H:%M:%S} – {report.until:%Y-%m-%d %H:%M:%S} UTC; "
             f"rates in % with Wilson 95 % intervals; p = two-proportion z-test of CTR vs variant {report.control}"]
    header = (f"{'experiment':<12} {'variant':<11} {'impr':>7}  {'CTR %':<23} {'add-to-cart %':<23} "
              f"{'purchase %':<23} {'p(CTR)':>7} {'p95 ms':>7} {'errors':>7}")
    lines += ["", "per variant", header, "-" * len(header)]
    for v in report.variants:
        lines.append(f"{v.experiment or '-':<12} {v.variant or '-':<11} {v.impressions:>7}  {_pct(v.ctr):<23} "
                     f"{_pct(v.add_to_cart):<23} {_pct(v.purchase):<23} {_num(v.p_value_ctr):>7} "
                     f"{_num(v.p95_latency_ms, '{:.0f}'):>7} {100 * v.error_rate:>6.1f}%")
    header = (f"{'ranker version':<36} {'impr':>7}  {'CTR %':<23} {'add-to-cart %':<23} {'purchase %':<23} "
              f"{'p95 ms':>7} {'errors':>7}")
    lines += ["", "per ranker version", header, "-" * len(header)]
    for r in report.rankers:
        lines.append(f"{r.ranker or '(none)':<36} {r.impressions:>7}  {_pct(r.ctr):<23} {_pct(r.add_to_cart):<23} "
                     f"{_pct(r.purchase):<23} {_num(r.p95_latency_ms, '{:.0f}'):>7} {100 * r.error_rate:>6.1f}%")
    if report.interleaving:
        header = f"{'experiment':<12} {'impr':>7} {'wins A':>7} {'wins B':>7} {'ties':>7} {'p (sign test)':>14}"
        lines += ["", "team-draft interleaving (clicked impressions: wins by credited clicks)", header,
                  "-" * len(header)]
        for i in report.interleaving:
            lines.append(f"{i.experiment or '-':<12} {i.impressions:>7} {i.wins_a:>7} {i.wins_b:>7} {i.ties:>7} "
                         f"{_num(i.p_value):>14}")
    return "\n".join(lines)


async def _report(args: argparse.Namespace) -> ExperimentReport:
    settings = PipelineSettings()
    conn = await asyncpg.connect(settings.postgres_url.get_secret_value(),
                                 timeout=settings.postgres_connect_timeout_ms / 1000)
    try:
        since = datetime.now(UTC) - timedelta(seconds=args.since)
        return await compute(conn, since=since, catalog=args.catalog, control=args.control)
    finally:
        await conn.close()


def _run(args: argparse.Namespace) -> int:
    try:
        report = asyncio.run(_report(args))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"experiment report: Postgres ({PipelineSettings().postgres_url!r}) failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(render(report))
    return 0


# Synthetic impressions for ``experiment bench``: 10 shown items each, variants A/B/challenger (10 %), latencies
# 50-249 ms, over the last hour; a click on a shown item for ``click_share`` of them.
_BENCH_IMPRESSIONS_SQL = """
INSERT INTO impressions (event_id, request_id, ts, endpoint, experiment, variant, model_versions, items, latency_ms)
SELECT gen_random_uuid(), 'bench-' || g, now() - (g % 3600) * interval '1 second', 'search', 'ab',
       CASE WHEN g % 10 = 0 THEN 'challenger' WHEN g % 2 = 0 THEN 'A' ELSE 'B' END,
       jsonb_build_object('ranker', CASE WHEN g % 10 = 0 THEN 'pickwise-ranker/2@challenger'
                                         ELSE 'pickwise-ranker/1@champion' END),
       (SELECT jsonb_agg(jsonb_build_object('item_id', 'i' || ((g + p) % 4000), 'position', p))
        FROM generate_series(0, 9) AS p),
       50 + g % 200
FROM generate_series(1, $1) AS g
"""
_BENCH_CLICKS_SQL = """
INSERT INTO events (event_id, type, user_id, item_id, request_id, ts)
SELECT gen_random_uuid(), 'click', 'u' || g, 'i' || ((g + 1) % 4000), 'bench-' || g, now()
FROM generate_series(1, $1) AS g WHERE (g::bigint * 7919) % 1000 < $2 * 1000
"""


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``compute`` over a scratch database of ``--impressions`` synthetic impressions (created, dropped)."""
    import time
    import uuid

    from pickwise_common.postgres import apply_migrations

    settings = PipelineSettings()
    base = settings.postgres_url.get_secret_value()
    name = f"experiment_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base, timeout=settings.postgres_connect_timeout_ms / 1000)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(base.rsplit("/", 1)[0] + f"/{name}", command_timeout=600)
        try:
            await apply_migrations(conn)
            await conn.execute(_BENCH_IMPRESSIONS_SQL, args.impressions)
            await conn.execute(_BENCH_CLICKS_SQL, args.impressions, args.click_share)
            await conn.execute("ANALYZE")
            since = datetime.now(UTC) - timedelta(hours=2)
            runs_ms = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                report = await compute(conn, since=since)
                runs_ms.append(1000 * (time.perf_counter() - started))
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
    runs_ms.sort()
    return {"impressions": args.impressions, "click_share": args.click_share, "repeat": args.repeat,
            "compute_ms_min": round(runs_ms[0], 1), "compute_ms_median": round(runs_ms[len(runs_ms) // 2], 1),
            "variants": len(report.variants), "rankers": len(report.rankers)}


def _run_bench(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_bench(args))))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("experiment", help="experiment statistics from the impression log")
    commands = parser.add_subparsers(dest="experiment_command", required=True, metavar="SUBCOMMAND")
    report = commands.add_parser("report", help="per-variant and per-ranker CTR, add-to-cart, purchase rate with "
                                                "95 %% intervals, p95 latency, errors, interleaving wins")
    report.add_argument("--since", type=parse_duration_s, default=3600.0, help="window: 15m, 1h (default), 7d")
    report.add_argument("--catalog", default=None, help="only this catalog's impressions (default: all)")
    report.add_argument("--control", default=CONTROL_VARIANT, help="the control variant (default A)")
    report.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    report.set_defaults(func=_run)
    bench = commands.add_parser("bench", help="time the report's SQL over synthetic impressions in a scratch "
                                              "database of the configured Postgres (created and dropped)")
    bench.add_argument("--impressions", type=int, default=300_000)
    bench.add_argument("--click-share", type=float, default=0.3, help="share of impressions with a click")
    bench.add_argument("--repeat", type=int, default=5)
    bench.set_defaults(func=_run_bench)

