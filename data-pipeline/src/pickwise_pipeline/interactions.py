"""History import: invoice lines of the retail data (data/retail/README.md) -> ``purchase`` events in the event log,
then the catalog's Redis history hashes and popularity rebuilt from the log (decision 0808).

Lines -> events is pure (``build_events``), so the offline evaluation builds its events by the same code.
Rules: a line without a customer, of a non-product code, with a price <= 0, a non-cancellation line with a
quantity <= 0, an exact copy of an earlier line, or a line outside the window is counted and skipped; a line
that cannot be read is counted as malformed and skipped (never aborts). A cancellation (``C…`` invoice, negative
quantity) removes what it cancels: its units are taken off the same customer's earlier purchases of the same
item, newest first; a purchase left with 0 units is no event; units with no earlier purchase in the window are
counted as unmatched. An event's id is the md5 (as a uuid) of catalog, invoice, upper-cased code and the line's
ordinal among the invoice's lines of that code, so a re-import adds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import json
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pickwise_common import cf
from pickwise_common import postgres as pg
from pickwise_common import redis as rd
from pickwise_common.catalogs import UnknownCatalog, catalog_spec
from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import EVENT_WEIGHTS, EventType
from pickwise_pipeline.retail_codes import is_product_code, retail_item_id
from pickwise_pipeline.settings import PipelineSettings

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


def event_key(catalog: str, invoice: str, code: str, ordinal: int) -> str:
    return f"{catalog}|{invoice}|{code.upper()}|{ordinal}"


def event_id(catalog: str, invoice: str, code: str, ordinal: int) -> str:
    """Deterministic id of an invoice line: the md5 of its key read as a uuid, the same as Postgres'
    ``md5(key)::uuid`` (the import lets Postgres compute the 400,000 ids while it inserts)."""
    return str(uuid.UUID(hashlib.md5(event_key(catalog, invoice, code, ordinal).encode()).hexdigest()))


COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")


@dataclass
class Lines:
    """Invoice lines as text columns (file order), and how many lines could not be split into the 8 fields."""

    frame: pd.DataFrame
    bad_field_count: int = 0

    @property
    def count(self) -> int:
        return len(self.frame) + self.bad_field_count


def lines_from_rows(rows: Iterable[Sequence[str]]) -> Lines:
    """Lines from already split rows (a row without exactly 8 fields is counted as malformed)."""
    good, bad = [], 0
    for row in rows:
        if len(row) == N_FIELDS:
            good.append(list(row))
        else:
            bad += 1
    return Lines(pd.DataFrame(good, columns=list(COLUMNS), dtype=str), bad)


def read_lines(path: Path) -> Lines:
    """The CSV's lines after the header (gzip when the name ends in .gz), read by pandas' C parser as text.

    A line with more than 8 fields is dropped by the parser and counted; one with fewer reads as empty trailing
    fields (and then fails the number checks)."""
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False,
                            on_bad_lines="skip", encoding="utf-8", encoding_errors="replace")
    except pd.errors.EmptyDataError:
        return Lines(pd.DataFrame(columns=list(COLUMNS), dtype=str), 0)
    if len(frame.columns) != N_FIELDS:
        raise InvalidInput(f"{path}: expected the {N_FIELDS} columns {', '.join(COLUMNS)}, "
                           f"found {len(frame.columns)}", fields=[{"field": "source", "message": "wrong columns"}])
    frame.columns = list(COLUMNS[: len(frame.columns)])
    text_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1) - 1 - len(_BLANK_LINE.findall(data))
    return Lines(frame, max(text_lines - len(frame), 0))


_BLANK_LINE = re.compile(rb"\n(?=\n)")


def build_events(lines: Lines | Iterable[Sequence[str]], *, catalog: str = "retail", date_from: str | None = None,
                 date_until: str | None = None) -> tuple[EventTable, ImportReport]:
    """Invoice lines -> net purchase events (in file order) and the counts of what was skipped and why.

    ``date_from``/``date_until`` are inclusive ``YYYY-MM-DD`` bounds on the line's date. Column-wise (pandas)
    except the cancellation netting, which walks only the customer+item pairs that have a cancellation."""
    if not isinstance(lines, Lines):
        lines = lines_from_rows(lines)
    report = ImportReport(lines=lines.count)
    if lines.bad_field_count:
        report.malformed["field_count"] = lines.bad_field_count
    df = lines.frame
    if df.empty:
        return EventTable(catalog, pd.DataFrame(columns=["InvoiceNo", "StockCode", "ordinal", "user", "item",
                                                          "quantity", "price", "Country", "ts"])), report

    # every check runs over the whole frame; a line is counted under the first check it fails (``alive`` holds
    # the lines that passed all so far) and the frame is filtered once at the end
    alive = np.ones(len(df), dtype=bool)

    def drop(mask: pd.Series | np.ndarray, counter: Counter[str], reason: str) -> None:
        hit = np.asarray(mask, dtype=bool) & alive
        n = int(hit.sum())
        if n:
            counter[reason] += n
            alive[hit] = False

    invoice = df["InvoiceNo"].str.strip()
    code = df["StockCode"].str.strip()
    drop((invoice == "") | (code == ""), report.malformed, "no_code_or_invoice")
    qty = pd.to_numeric(df["Quantity"].str.strip(), errors="coerce")
    qty_ok = qty.notna() & (qty == qty.round()) & ~df["Quantity"].str.contains(".", regex=False)
    price = pd.to_numeric(df["UnitPrice"].str.strip(), errors="coerce")
    dates = df["InvoiceDate"].str.strip()
    unique_dates = dates.unique()
    parsed = pd.to_datetime(pd.Series(unique_dates), format="%Y-%m-%d %H:%M:%S", errors="coerce", utc=True)
    short = parsed.isna() & pd.Series(unique_dates).str.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
    if short.any():
        parsed[short] = pd.to_datetime(pd.Series(unique_dates)[short], format="%Y-%m-%d %H:%M", utc=True)
    ts = pd.Series(pd.DatetimeIndex(parsed).take(pd.Index(unique_dates).get_indexer(dates)), index=df.index)
    drop(~qty_ok | price.isna() | ~np.isfinite(price.fillna(0.0)) | ts.isna(), report.malformed,
         "unreadable_number_or_date")
    day = dates.str.slice(0, 10)
    if date_from is not None:
        drop(day < date_from, report.skipped, "outside_window")
    if date_until is not None:
        drop(day > date_until, report.skipped, "outside_window")
    # an exact copy has the same fields, so it fails the checks above exactly when its original does
    drop(df.duplicated(subset=list(COLUMNS), keep="first"), report.skipped, "duplicate_line")
    customer_text = df["CustomerID"].str.strip()
    drop(customer_text == "", report.skipped, "no_customer")
    prefix = catalog_spec(catalog).id_prefix
    code_items = {c: (retail_item_id(c) if catalog == "retail" else prefix + c.upper()) if is_product_code(c)
                  else None for c in code.unique()}
    item = code.map(code_items)
    drop(item.isna(), report.skipped, "non_product_code")
    drop(price.fillna(0.0) <= 0, report.skipped, "price_not_positive")
    customer = pd.to_numeric(customer_text, errors="coerce")
    drop(customer.isna() | ~np.isfinite(customer.fillna(0.0)), report.malformed, "unreadable_customer")
    is_c = invoice.str.startswith("C").to_numpy(dtype=bool)
    quantity_all = qty.fillna(0).to_numpy()
    drop((is_c & (quantity_all >= 0)) | (~is_c & (quantity_all < 0)), report.skipped,
         "negative_quantity_not_cancellation")
    drop(~is_c & (quantity_all == 0), report.skipped, "zero_quantity")
    rows = pd.DataFrame({"InvoiceNo": invoice, "StockCode": code, "item": item, "price": price, "ts": ts,
                         "qty": qty, "Country": df["Country"], "customer": customer})[alive]
    rows = rows.assign(qty=rows["qty"].astype("int64"), user=rows["customer"].astype("int64").astype(str))
    is_c = rows["InvoiceNo"].str.startswith("C").to_numpy(dtype=bool)
    cancels, buys = rows[is_c], rows[~is_c].copy()
    report.purchase_lines = len(buys)
    report.cancellation_lines = len(cancels)
    report.cancelled_units = int(-cancels["qty"].sum())
    buys["ordinal"] = buys.groupby(["InvoiceNo", "item"], sort=False).cumcount()
    quantity = buys["qty"].to_numpy().copy()
    # netting: only the pairs a cancellation touches, in file order (the frame's index is the line order)
    pairs = set(zip(cancels["user"], cancels["item"], strict=True))
    if pairs:
        touched = pd.concat([buys.loc[[p in pairs for p in zip(buys["user"], buys["item"], strict=True)],
                                      ["user", "item", "qty"]].assign(pos=lambda f: buys.index.get_indexer(f.index)),
                             cancels[["user", "item", "qty"]].assign(pos=-1)]).sort_index(kind="stable")
        stacks: dict[tuple[str, str], list[int]] = defaultdict(list)
        for user, item, qty, pos in zip(touched["user"], touched["item"], touched["qty"], touched["pos"],
                                        strict=True):
            if pos >= 0:
                stacks[(user, item)].append(pos)
                continue
            units = -int(qty)
            stack = stacks[(user, item)]
            while units > 0 and stack:
                taken = min(units, int(quantity[stack[-1]]))
                quantity[stack[-1]] -= taken
                units -= taken
                if quantity[stack[-1]] == 0:
                    stack.pop()
                    report.purchases_removed_by_cancellation += 1
            report.cancelled_units_unmatched += units
    keep = quantity > 0
    buys = buys[keep].assign(quantity=quantity[keep])
    report.events = len(buys)
    return EventTable(catalog, buys[["InvoiceNo", "StockCode", "ordinal", "user", "item", "quantity", "price",
                                     "Country", "ts"]].reset_index(drop=True)), report


@dataclass
class EventTable:
    """The net purchase events of an import, column-wise (file order)."""

    catalog: str
    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    def keys(self) -> pd.Series:
        f = self.frame
        return self.catalog + "|" + f["InvoiceNo"] + "|" + f["StockCode"].str.upper() + "|" + f["ordinal"].astype(str)

    def events(self) -> list[PurchaseEvent]:
        f = self.frame
        ids = [str(uuid.UUID(hashlib.md5(k.encode()).hexdigest())) for k in self.keys().tolist()]
        return [PurchaseEvent(*fields) for fields in zip(
            ids, f["user"].tolist(), f["item"].tolist(), f["InvoiceNo"].tolist(), f["quantity"].tolist(),
            f["price"].tolist(), f["Country"].tolist(), f["ts"].dt.to_pydatetime().tolist(), strict=True)]

    def copy_text_of(self, start: int, stop: int) -> bytes:
        """``copy_text`` of the rows [start, stop)."""
        return EventTable(self.catalog, self.frame.iloc[start:stop]).copy_text()

    def copy_text(self) -> bytes:
        """COPY text rows (invoice, code, ordinal, user_id, item_id, quantity, unit_price, country, ts as epoch
        seconds), tab-separated, joined column-wise (pandas' to_csv formats timestamps row by row: 5x slower);
        the event's key, id and payload are built by Postgres."""
        plain = self._join(escape=False)
        n = len(self.frame)
        # fields with a tab, newline or backslash are rare: escape only when one is there
        if plain.count(b"\t") == 8 * n and plain.count(b"\n") == n and b"\\" not in plain and b"\r" not in plain:
            return plain
        return self._join(escape=True)

    def _join(self, *, escape: bool) -> bytes:
        f = self.frame
        if not len(f):
            return b""
        epoch_s = (f["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)

        def text(column: pd.Series) -> pd.Series:
            column = column.astype(str)
            if escape:
                column = column.str.replace("\\", "\\\\", regex=False).str.replace("\t", " ", regex=False) \
                    .str.replace("\n", " ", regex=False).str.replace("\r", " ", regex=False)
            return column

        row = (text(f["InvoiceNo"]) + "\t" + text(f["StockCode"]) + "\t" + f["ordinal"].astype(str) + "\t"
               + text(f["user"]) + "\t" + text(f["item"]) + "\t" + f["quantity"].astype(str) + "\t"
               + f["price"].astype(str) + "\t" + text(f["Country"]) + "\t" + epoch_s.astype(str))
        return ("\n".join(row.tolist()) + "\n").encode()


# ---- the event log -------------------------------------------------------------------------------------------

WRITERS = 2   # connections inserting at once: the insert's index upkeep is Postgres' CPU, one core each


async def write_events(pool: Any, table: EventTable, catalog: str, writers: int = WRITERS) -> dict[str, Any]:
    """COPY the events (text format) into a temporary table, then insert the new ones with ``md5(key)::uuid`` as
    their id, in ``writers`` disjoint slices on as many connections (the ids differ, so slices never conflict);
    returns inserted / already present and the seconds of each step."""
    started = time.perf_counter()
    n = len(table)
    bounds = [round(n * i / writers) for i in range(writers + 1)]
    slices = [table.copy_text_of(bounds[i], bounds[i + 1]) for i in range(writers) if bounds[i + 1] > bounds[i]]
    text_s = time.perf_counter() - started
    results = await asyncio.gather(*(_insert(pool, data, catalog) for data in slices))
    inserted = sum(r[0] for r in results)
    return {"inserted": inserted, "already_present": n - inserted, "text_s": round(text_s, 3),
            "copy_s": round(max((r[1] for r in results), default=0.0), 3),
            "insert_s": round(max((r[2] for r in results), default=0.0), 3), "writers": len(slices)}


async def _insert(pool: Any, data: bytes, catalog: str) -> tuple[int, float, float]:
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.execute("CREATE TEMP TABLE import_events (invoice text, code text, ordinal integer, "
                           "user_id text, item_id text, quantity integer, unit_price double precision, "
                           "country text, epoch_s bigint) ON COMMIT DROP")
        await conn.copy_to_table("import_events", source=io.BytesIO(data), format="text")
        copied_s = time.perf_counter() - started
        # the id is md5 of event_key(): "<catalog>|<invoice>|<CODE>|<ordinal>"
        status = await conn.execute(
            "INSERT INTO events (event_id, type, user_id, item_id, catalog, quantity, invoice, source, ts, payload) "
            "SELECT md5($1 || '|' || invoice || '|' || upper(code) || '|' || ordinal)::uuid, 'purchase', "
            "user_id, item_id, $1, quantity, invoice, $2, to_timestamp(epoch_s), "
            "jsonb_build_object('unit_price', unit_price, 'country', country) "
            "FROM import_events ON CONFLICT (event_id) DO NOTHING", catalog, SOURCE)
    return int(status.split()[-1]), copied_s, time.perf_counter() - started - copied_s


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
    events, report = build_events(read_lines(source), catalog=catalog, date_from=date_from, date_until=date_until)
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
    try:
        catalog_spec(args.catalog)
    except UnknownCatalog as exc:
        print(f"--catalog: {exc}", file=sys.stderr)
        return 2
    source = Path(args.source) if args.source else default_source()
    if not source.is_file():
        print(f"--source: no such file {source}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run_import(PipelineSettings(), source, args.catalog, date_from=args.date_from,
                                        date_until=args.until, rebuild=not args.no_redis))
    except InvalidInput as exc:
        print(f"--source: {exc}", file=sys.stderr)
        return 2
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
