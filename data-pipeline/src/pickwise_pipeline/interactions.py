"""History import: invoice lines of the retail data (data/retail/README.md) -> ``purchase`` events in the event log,
then the catalog's Redis history hashes and popularity rebuilt from the log (decision 0808).

Lines -> events is pure (``build_events``), so the offline evaluation builds its events by the same code.
Rules: a line without a customer, of a non-product code, with a price <= 0, a non-cancellation line with a
quantity <= 0, an exact copy of an earlier line, or a line outside the window is counted and skipped; a line
that cannot be read is counted as malformed and skipped (never aborts). A cancellation (``C…`` invoice, negative
quantity) removes what it cancels: its units are taken off the same customer's earlier purchases of the same
item, newest first; a purchase left with 0 units is no event; units with no earlier purchase in the window are
counted as unmatched. Event ids are uuid5 of catalog, invoice, upper-cased code and the line's ordinal among the
invoice's lines of that code, so a re-import adds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import gzip
import hashlib
import json
import math
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pickwise_common import cf
from pickwise_common import postgres as pg
from pickwise_common import redis as rd
from pickwise_common.catalogs import catalog_spec
from pickwise_common.schemas import EVENT_WEIGHTS, EventType
from pickwise_pipeline.retail_codes import is_product_code, retail_item_id
from pickwise_pipeline.settings import PipelineSettings

EVENT_NAMESPACE = uuid.UUID("6f0c4d1e-2b7a-5c11-9a43-7d2e8b1f0a55")
SOURCE = "import:online_retail"
N_FIELDS = 8
CANCELLATION_METHOD = ("net per customer+item: a cancellation's units come off that customer's earlier purchases "
                       "of the item, newest first; a purchase left with 0 units is dropped")
HISTORY_TTL_S = 400 * 24 * 3600      # as the event-consumer keeps a history hash
REDIS_BATCH = 500


def default_source() -> Path:
    from pickwise_common.settings import default_data_root

    return default_data_root() / "retail" / "online_retail.csv.gz"


@dataclass(slots=True)
class PurchaseEvent:
    event_id: str
    user_id: str
    item_id: str
    invoice: str
    quantity: int
    unit_price: float
    country: str
    ts: datetime


@dataclass
class ImportReport:
    lines: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    cancellation_lines: int = 0
    cancelled_units: int = 0
    cancelled_units_unmatched: int = 0
    purchases_removed_by_cancellation: int = 0
    purchase_lines: int = 0
    events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "malformed": sum(self.malformed.values()),
                "malformed_by_reason": dict(self.malformed), "skipped": sum(self.skipped.values()),
                "skipped_by_reason": dict(self.skipped.most_common()),
                "cancellation_lines": self.cancellation_lines, "cancelled_units": self.cancelled_units,
                "cancelled_units_unmatched": self.cancelled_units_unmatched,
                "purchases_removed_by_cancellation": self.purchases_removed_by_cancellation,
                "purchase_lines": self.purchase_lines, "events": self.events,
                "cancellation_method": CANCELLATION_METHOD}


def read_rows(path: Path) -> Iterator[list[str]]:
    """The CSV's rows after the header (a gzip file when the name ends in .gz)."""
    raw = gzip.open(path, "rt", encoding="utf-8", newline="") if str(path).endswith(".gz") else \
        open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    with raw as fh:
        reader = csv.reader(fh)
        next(reader, None)
        yield from reader


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def event_id(catalog: str, invoice: str, code: str, ordinal: int) -> str:
    """Deterministic id of an invoice line (``uuid.uuid5`` of the line's key, as text; built by hand because
    the import makes 400,000 of them and ``uuid.UUID`` objects cost more than the rest of a line)."""
    h = hashlib.sha1(_NAMESPACE_BYTES + f"{catalog}|{invoice}|{code.upper()}|{ordinal}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# RFC 4122 variant bits on the 17th hex digit: 10xx
_VARIANT = {c: format((int(c, 16) & 0x3) | 0x8, "x") for c in "0123456789abcdef"}


def _parse_ts(text: str, cache: dict[str, datetime]) -> datetime:
    ts = cache.get(text)
    if ts is None:
        # 'YYYY-MM-DD HH:MM:SS' (local UK time taken as UTC: at most an hour off in summer)
        ts = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                      int(text[17:19]) if len(text) >= 19 else 0, tzinfo=UTC)
        cache[text] = ts
    return ts


def build_events(rows: Iterable[list[str]], *, catalog: str = "retail", date_from: str | None = None,
                 date_until: str | None = None) -> tuple[list[PurchaseEvent], ImportReport]:
    """Invoice lines -> net purchase events (in file order) and the counts of what was skipped and why.

    ``date_from``/``date_until`` are inclusive ``YYYY-MM-DD`` bounds on the line's date."""
    # half a million small objects and no cycles: the cyclic collector would rescan them over and over
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_events(rows, catalog, date_from, date_until)
    finally:
        if was_enabled:
            gc.enable()


def _build_events(rows: Iterable[list[str]], catalog: str, date_from: str | None,
                  date_until: str | None) -> tuple[list[PurchaseEvent], ImportReport]:
    report = ImportReport()
    events: list[PurchaseEvent | None] = []
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    ordinals: Counter[tuple[str, str]] = Counter()
    seen: set[tuple[str, ...]] = set()
    ts_cache: dict[str, datetime] = {}
    code_items: dict[str, str | None] = {}      # code -> item id, None for a non-product code
    prefix = catalog_spec(catalog).id_prefix
    for row in rows:
        report.lines += 1
        if len(row) != N_FIELDS:
            report.malformed["field_count"] += 1
            continue
        invoice, code, _desc, qty_text, date_text, price_text, customer_text, country = row
        code = code.strip()
        if not code or not invoice:
            report.malformed["no_code_or_invoice"] += 1
            continue
        try:
            quantity = int(qty_text)
            price = float(price_text)
            ts = _parse_ts(date_text, ts_cache)
        except ValueError:
            report.malformed["unreadable_number_or_date"] += 1
            continue
        if not math.isfinite(price):
            report.malformed["unreadable_number_or_date"] += 1
            continue
        day = date_text[:10]
        if (date_from is not None and day < date_from) or (date_until is not None and day > date_until):
            report.skipped["outside_window"] += 1
            continue
        key = tuple(row)
        if key in seen:
            report.skipped["duplicate_line"] += 1
            continue
        seen.add(key)
        if not customer_text.strip():
            report.skipped["no_customer"] += 1
            continue
        if code in code_items:
            item = code_items[code]
        else:
            item = code_items[code] = (retail_item_id(code) if catalog == "retail" else prefix + code.upper()) \
                if is_product_code(code) else None
        if item is None:
            report.skipped["non_product_code"] += 1
            continue
        if price <= 0:
            report.skipped["price_not_positive"] += 1
            continue
        try:
            user = str(int(float(customer_text)))
        except ValueError:
            report.malformed["unreadable_customer"] += 1
            continue
        if invoice.startswith("C") or quantity < 0:
            if not invoice.startswith("C") or quantity >= 0:
                report.skipped["negative_quantity_not_cancellation"] += 1
                continue
            report.cancellation_lines += 1
            units = -quantity
            report.cancelled_units += units
            stack = by_pair.get((user, item), [])
            while units > 0 and stack:
                index = stack[-1]
                purchase = events[index]
                assert purchase is not None
                taken = min(units, purchase.quantity)
                purchase.quantity -= taken
                units -= taken
                if purchase.quantity == 0:
                    events[index] = None
                    stack.pop()
                    report.purchases_removed_by_cancellation += 1
            report.cancelled_units_unmatched += units
            continue
        if quantity == 0:
            report.skipped["zero_quantity"] += 1
            continue
        report.purchase_lines += 1
        ordinal_key = (invoice, item)
        ordinal = ordinals[ordinal_key]
        ordinals[ordinal_key] += 1
        by_pair[(user, item)].append(len(events))
        events.append(PurchaseEvent(event_id(catalog, invoice, code, ordinal), user, item, invoice, quantity,
                                    price, country, ts))
    kept = [e for e in events if e is not None]
    report.events = len(kept)
    return kept, report


# ---- the event log -------------------------------------------------------------------------------------------

COPY_COLUMNS = ("event_id", "type", "user_id", "item_id", "catalog", "quantity", "invoice", "source", "ts",
                "payload")


async def write_events(pool: Any, events: list[PurchaseEvent], catalog: str) -> dict[str, int]:
    """COPY the events into a temporary table, then insert the new ones; returns inserted / already present."""
    records = [(e.event_id, "purchase", e.user_id, e.item_id, catalog, e.quantity, e.invoice, SOURCE, e.ts,
                f'{{"unit_price":{e.unit_price!r},"country":{json.dumps(e.country)}}}')
               for e in events]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.execute("CREATE TEMP TABLE import_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP")
        await conn.copy_records_to_table("import_events", records=records, columns=list(COPY_COLUMNS))
        cols = ", ".join(COPY_COLUMNS)
        status = await conn.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM import_events "  # noqa: S608
                                    "ON CONFLICT (event_id) DO NOTHING")
    inserted = int(status.split()[-1])
    return {"inserted": inserted, "already_present": len(events) - inserted}


def history_from_rows(rows: Iterable[tuple[str, str, str, int | None]]) -> dict[str, dict[str, float]]:
    """user -> item -> CF history weight (``cf.event_cf_weight``) from (user, item, type, quantity) rows."""
    history: dict[str, dict[str, float]] = defaultdict(dict)
    for user, item, event_type, quantity in rows:
        weight = cf.event_cf_weight(event_type, quantity)
        if weight > 0:
            hist = history[user]
            hist[item] = hist.get(item, 0.0) + weight
    return history


async def rebuild_redis(pool: Any, redis: Any, catalog: str) -> dict[str, int]:
    """The catalog's user history hashes and all-time popularity, recomputed from the whole event log."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT user_id, item_id, type, quantity FROM events "
                                "WHERE catalog = $1 AND type = ANY($2::text[])", catalog, list(cf.CF_EVENT_TYPES))
        dismissed = await conn.fetch("SELECT DISTINCT user_id, item_id FROM events "
                                     "WHERE catalog = $1 AND type = 'dismiss'", catalog)
    tuples = [(r["user_id"], r["item_id"], r["type"], r["quantity"]) for r in rows]
    history = history_from_rows(tuples)
    popularity: Counter[str] = Counter()
    for _user, item, event_type, _quantity in tuples:
        popularity[item] += EVENT_WEIGHTS[EventType(event_type)]
    users = list(history)
    for start in range(0, len(users), REDIS_BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for user in users[start:start + REDIS_BATCH]:
                key = rd.user_history_key(user, catalog)
                pipe.delete(key)
                pipe.hset(key, mapping={i: f"{w:.6g}" for i, w in history[user].items()})
                pipe.expire(key, HISTORY_TTL_S)
            await pipe.execute()
    by_user: dict[str, list[str]] = defaultdict(list)
    for row in dismissed:
        by_user[row["user_id"]].append(row["item_id"])
    async with redis.pipeline(transaction=False) as pipe:
        for user, items in by_user.items():
            pipe.sadd(rd.user_dismissed_key(user, catalog), *items)
            pipe.expire(rd.user_dismissed_key(user, catalog), HISTORY_TTL_S)
        total = rd.popularity_all_key(catalog)
        pipe.delete(total)
        ranked = list(popularity.items())
        for start in range(0, len(ranked), 5000):
            pipe.zadd(total, dict(ranked[start:start + 5000]))
        await pipe.execute()
    return {"history_users": len(users), "history_pairs": sum(len(h) for h in history.values()),
            "popular_items": len(popularity), "dismissed_users": len(by_user)}


async def run_import(settings: PipelineSettings, source: Path, catalog: str, *, date_from: str | None,
                     date_until: str | None, rebuild: bool = True) -> dict[str, Any]:
    catalog_spec(catalog)
    started = time.perf_counter()
    events, report = build_events(read_rows(source), catalog=catalog, date_from=date_from, date_until=date_until)
    parsed_s = time.perf_counter() - started
    pool = await pg.create_pool(settings, migrate=True)
    try:
        written = await write_events(pool, events, catalog)
        import_s = time.perf_counter() - started
        redis_stats: dict[str, int] = {}
        rebuild_s = 0.0
        if rebuild:
            client = rd.create_redis(settings)
            try:
                t0 = time.perf_counter()
                redis_stats = await rebuild_redis(pool, client, catalog)
                rebuild_s = time.perf_counter() - t0
            finally:
                await client.aclose()
    finally:
        await pool.close()
    return {"catalog": catalog, "source": str(source), "window": {"from": date_from, "until": date_until},
            **report.as_dict(), **written,
            "parse_s": round(parsed_s, 3), "import_s": round(import_s, 3),
            "lines_per_s": round(report.lines / import_s) if import_s > 0 else None,
            "redis": redis_stats, "redis_rebuild_s": round(rebuild_s, 3)}


def _date(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc
    return text


def run(args: argparse.Namespace) -> int:
    source = Path(args.source) if args.source else default_source()
    if not source.is_file():
        print(f"--source: no such file {source}", file=sys.stderr)
        return 2
    result = asyncio.run(run_import(PipelineSettings(), source, args.catalog, date_from=args.date_from,
                                    date_until=args.until, rebuild=not args.no_redis))
    print(json.dumps(result))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("import-interactions", help="invoice lines -> purchase events (+ Redis history)")
    parser.add_argument("--catalog", default="retail")
    parser.add_argument("--source", default=None, help="CSV(.gz) of invoice lines (default: the repo's retail data)")
    parser.add_argument("--from", dest="date_from", type=_date, default=None, help="first day, YYYY-MM-DD")
    parser.add_argument("--until", type=_date, default=None, help="last day (inclusive), YYYY-MM-DD")
    parser.add_argument("--no-redis", action="store_true", help="write the event log only")
    parser.set_defaults(func=run)
