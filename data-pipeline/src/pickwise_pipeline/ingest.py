"""``pickwise-pipeline ingest [--catalog NAME]``: a catalog's source file → Postgres ``items`` + Milvus vectors
(with scalar fields for filtering, ``catalog`` among them) + a BM25 index (its ``catalog_state`` row) + Redis
item metadata under the catalog's keys. ``flipkart`` (default) reads its CSV through a ``ColumnMapping``;
``retail`` aggregates the Online Retail invoice lines into items (``retail_catalog``). Idempotent per
catalog; ``--if-changed`` skips the heavy work when the file fingerprint and the embedding model match what
was loaded last time for that catalog (and re-creates the Redis metadata when Redis lost it)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pickwise_common import postgres as pg
from pickwise_common import redis as rd
from pickwise_common.bm25 import Bm25sIndex, tokenize
from pickwise_common.catalogs import CATALOGS, DEFAULT_CATALOG
from pickwise_common.embeddings import Embedder, embedder_from_settings
from pickwise_common.schemas import Item
from pickwise_pipeline import retail_catalog
from pickwise_pipeline.catalog import FLIPKART, ColumnMapping, file_fingerprint, normalise, read_rows, search_text
from pickwise_pipeline.progress import Progress, summary_line
from pickwise_pipeline.settings import PipelineSettings

log = logging.getLogger("pickwise.ingest")

MISSING = -1.0  # Milvus scalar fields are not nullable here: -1 marks "unknown" (RAM, storage, rating...)
# names a catalog was stored under before catalogs were tenants: its ingest removes what they left behind
LEGACY_NAMES: dict[str, tuple[str, ...]] = {"flipkart": ("flipkart_mobiles",)}
# the retail mapping's version: bump when retail_catalog's aggregation or categories change (re-loads it)
RETAIL_MAPPING_VERSION = 1


def milvus_schema(dim: int) -> Any:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("item_id", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("catalog", DataType.VARCHAR, max_length=64)
    schema.add_field("brand", DataType.VARCHAR, max_length=64)
    schema.add_field("group_id", DataType.VARCHAR, max_length=256)
    schema.add_field("color", DataType.VARCHAR, max_length=128)
    schema.add_field("price_band", DataType.VARCHAR, max_length=16)
    schema.add_field("price", DataType.FLOAT)  # in the catalog's currency
    schema.add_field("ram_gb", DataType.FLOAT)
    schema.add_field("storage_gb", DataType.FLOAT)
    schema.add_field("rating", DataType.FLOAT)
    schema.add_field("discount_pct", DataType.FLOAT)
    schema.add_field("feature_phone", DataType.BOOL)
    return schema


def milvus_row(item: Item, vector: np.ndarray, catalog: str) -> dict[str, Any]:
    def num(value: float | None) -> float:
        return MISSING if value is None else float(value)

    return {"item_id": item.item_id, "vector": vector.tolist(), "catalog": catalog, "brand": item.brand,
            "group_id": item.group_id, "color": (item.color or "").lower(), "price_band": item.price_band or "",
            "price": num(item.price), "ram_gb": num(item.ram_gb), "storage_gb": num(item.storage_gb),
            "rating": num(item.rating), "discount_pct": num(item.discount_pct),
            "feature_phone": bool(item.attrs.get("feature_phone", False))}


def write_milvus(settings: PipelineSettings, items: list[Item], vectors: np.ndarray, catalog: str) -> None:
    from pymilvus import MilvusClient

    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    client = MilvusClient(uri=settings.milvus_uri, token=token)
    try:
        name = settings.milvus_collection
        dim = int(vectors.shape[1])
        if client.has_collection(name):
            fields = client.describe_collection(name).get("fields", [])
            current = next((f for f in fields if f.get("name") == "vector"), {})
            current_dim = int(current.get("params", {}).get("dim", -1))
            names = {f.get("name") for f in fields}
            # a collection of an older schema is rebuilt; the other catalogs' rows go with it, and their next
            # `ingest --if-changed` re-loads them (their Milvus count no longer matches catalog_state)
            if current_dim != dim or not {"feature_phone", "price"} <= names:
                client.drop_collection(name)
        if not client.has_collection(name):
            index = client.prepare_index_params()
            # Exact search: 4k vectors take ~10 ms filtered (docs/scaling.md has the measurements).
            index.add_index(field_name="vector", index_type=settings.milvus_index_type, metric_type="IP")
            client.create_collection(name, schema=milvus_schema(dim), index_params=index)
        client.delete(name, filter=f"catalog in {json.dumps([catalog, *LEGACY_NAMES.get(catalog, ())])}")
        rows = [milvus_row(item, vectors[i], catalog) for i, item in enumerate(items)]
        for start in range(0, len(rows), 1000):
            client.insert(name, rows[start:start + 1000])
        client.flush(name)
        client.load_collection(name)
    finally:
        client.close()


def milvus_count(settings: PipelineSettings, catalog: str) -> int:
    from pymilvus import MilvusClient

    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    client = MilvusClient(uri=settings.milvus_uri, token=token)
    try:
        if not client.has_collection(settings.milvus_collection):
            return 0
        client.load_collection(settings.milvus_collection)
        result = client.query(settings.milvus_collection, filter=f'catalog == "{catalog}"',
                              output_fields=["count(*)"])
        return int(result[0]["count(*)"]) if result else 0
    finally:
        client.close()


async def write_postgres(conn: Any, items: list[Item], catalog: str) -> None:
    rows = [(i.item_id, catalog, i.title, i.brand, i.model, i.color, i.category, i.ram_gb, i.storage_gb,
             i.price_inr, i.original_price_inr, i.discount_pct, i.rating, i.price_band, i.group_id,
             json.dumps(i.attrs), i.price, i.currency) for i in items]
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO items (item_id, catalog, title, brand, model, color, category, ram_gb, storage_gb,
                   price_inr, original_price_inr, discount_pct, rating, price_band, group_id, attrs, price, currency)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16::jsonb,$17,$18)
               ON CONFLICT (item_id) DO UPDATE SET catalog=EXCLUDED.catalog, title=EXCLUDED.title,
                   brand=EXCLUDED.brand, model=EXCLUDED.model, color=EXCLUDED.color,
                   category=EXCLUDED.category, ram_gb=EXCLUDED.ram_gb, storage_gb=EXCLUDED.storage_gb,
                   price_inr=EXCLUDED.price_inr, original_price_inr=EXCLUDED.original_price_inr,
                   discount_pct=EXCLUDED.discount_pct, rating=EXCLUDED.rating, price_band=EXCLUDED.price_band,
                   group_id=EXCLUDED.group_id, attrs=EXCLUDED.attrs, price=EXCLUDED.price,
                   currency=EXCLUDED.currency, updated_at=now()""", rows)
        await conn.execute("DELETE FROM items WHERE catalog = $1 AND NOT (item_id = ANY($2::text[]))",
                           catalog, [i.item_id for i in items])
        for legacy in LEGACY_NAMES.get(catalog, ()):
            await conn.execute("DELETE FROM items WHERE catalog = $1", legacy)
            await conn.execute("DELETE FROM catalog_state WHERE catalog = $1", legacy)


def fallback_score(item: Item) -> float:
    """An item's place in the catalog's last popularity fallback (``catalog_by_rating_key``): its rating, or,
    in a catalog without ratings (retail), how many invoices it was on in the source file."""
    if item.rating is not None:
        return float(item.rating)
    return float(item.attrs.get("invoices", 0))


async def write_redis(settings: PipelineSettings, items: list[Item], catalog: str = DEFAULT_CATALOG) -> None:
    client = rd.create_redis(settings)
    by_rating = rd.catalog_by_rating_key(catalog)
    try:
        old = set(await client.zrange(by_rating, 0, -1))
        new = {i.item_id for i in items}
        pipe = client.pipeline(transaction=False)
        for n, item in enumerate(items, start=1):
            pipe.hset(rd.item_key(item.item_id, catalog), mapping={
                "json": item.model_dump_json(), "brand": item.brand, "category": item.category,
                "group_id": item.group_id})
            pipe.zadd(by_rating, {item.item_id: fallback_score(item)})
            if n % 1000 == 0:
                await pipe.execute()
        stale = sorted(old - new)
        if stale:
            pipe.zrem(by_rating, *stale)
            pipe.delete(*[rd.item_key(i, catalog) for i in stale])
        await pipe.execute()
    finally:
        await client.aclose()


async def redis_has_catalog(settings: PipelineSettings, items_expected: int, catalog: str = DEFAULT_CATALOG) -> bool:
    client = rd.create_redis(settings)
    try:
        return int(await client.zcard(rd.catalog_by_rating_key(catalog))) >= items_expected
    finally:
        await client.aclose()


EMBED_CHUNK_ROWS = 256  # rows per encode call: the bar moves every few seconds on these 2 cores


def embed_with_progress(embedder: Embedder, texts: list[str], what: str) -> np.ndarray:
    """The documents' vectors, encoded in chunks so a terminal shows a bar (the step that takes ~20 s)."""
    chunks: list[np.ndarray] = []
    with Progress(what, total=len(texts), summary=False) as progress:
        for start in range(0, len(texts), EMBED_CHUNK_ROWS):
            chunk = texts[start:start + EMBED_CHUNK_ROWS]
            chunks.append(embedder.encode_documents(chunk))
            progress.update(len(chunk))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def embed_cached(settings: PipelineSettings, embedder: Embedder, texts: list[str],
                 what: str) -> tuple[np.ndarray, bool]:
    """The documents' vectors, from ``<models_dir>/embeddings/<digest>.npy`` when the same model and backend
    embedded exactly these texts before (a re-load of an unchanged catalog into fresh stores: every test stack,
    a new Milvus), else encoded and stored there. Returns the vectors and whether they came from the cache."""
    digest = hashlib.sha256(embedder.describe().encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x1f")
    path = Path(settings.models_dir) / "embeddings" / f"{digest.hexdigest()[:40]}.npy"
    if path.is_file():
        try:
            vectors = np.load(path)
            if vectors.shape[0] == len(texts):
                return vectors, True
        except (OSError, ValueError) as exc:  # a torn or foreign file: encode again and overwrite it
            log.warning("embedding cache %s unreadable: %s", path, exc)
    vectors = embed_with_progress(embedder, texts, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)  # atomic: concurrent ingests never read half a file
    except OSError as exc:  # a read-only models dir costs only the next load's encode time
        log.warning("embedding cache %s not written: %s", path, exc)
    return vectors, False


@dataclass(frozen=True)
class Source:
    """What to load: the catalog's name, its file and how to read it."""

    catalog: str
    path: Path
    mapping: ColumnMapping | None = None   # None: the retail invoice-line aggregation

    def fingerprint(self) -> str:
        if self.mapping is not None:
            return file_fingerprint(self.path, self.mapping)
        return file_fingerprint(self.path, {"loader": "retail_catalog", "version": RETAIL_MAPPING_VERSION})

    def load(self) -> tuple[list[Item], dict[str, Any]]:
        """The items and the load report (rows read, rejected, duplicates, what was excluded and why)."""
        if self.mapping is None:
            retail = retail_catalog.load(self.path)
            return retail.items, retail.report()
        normalised = normalise(read_rows(self.path), self.mapping)
        return normalised.items, normalised.report()


def default_source(settings: PipelineSettings, catalog: str) -> Path:
    if catalog == "retail":
        return settings.data_dir / "retail" / "online_retail.csv.gz"
    return settings.resolved_catalog_path()


_ITEMS_JSON = """SELECT json_build_object('item_id', item_id, 'catalog', catalog, 'title', title, 'brand', brand,
                      'model', model, 'color', color, 'category', category, 'ram_gb', ram_gb,
                      'storage_gb', storage_gb, 'price', price, 'currency', currency, 'price_inr', price_inr,
                      'original_price_inr', original_price_inr, 'discount_pct', discount_pct,
                      'rating', rating, 'price_band', price_band, 'group_id', group_id,
                      'attrs', attrs)::text AS j FROM items WHERE catalog = $1 ORDER BY item_id"""


async def run_ingest(settings: PipelineSettings, path: Path, mapping: ColumnMapping | None = FLIPKART, *,
                     if_changed: bool, catalog: str | None = None) -> dict[str, Any]:
    """Load one catalog (``catalog`` defaults to the mapping's; without a mapping: retail)."""
    catalog = catalog or (mapping.catalog if mapping is not None else retail_catalog.CATALOG)
    source = Source(catalog, path, mapping)
    started = time.perf_counter()
    fingerprint = source.fingerprint()
    pool = await pg.create_pool(settings, migrate=True)
    try:
        async with pool.acquire() as conn:
            state = await conn.fetchrow(
                "SELECT fingerprint, embedding_model, item_count, report FROM catalog_state WHERE catalog = $1",
                catalog)
            if if_changed and state and state["fingerprint"] == fingerprint and \
                    state["embedding_model"] == settings.embedding_model and \
                    milvus_count(settings, catalog) == state["item_count"]:
                report = json.loads(state["report"])
                if await redis_has_catalog(settings, state["item_count"], catalog):
                    return {"status": "unchanged", "catalog": catalog, **_summary(report)}
                items = [Item.model_validate_json(r["j"]) for r in await conn.fetch(_ITEMS_JSON, catalog)]
                await write_redis(settings, items, catalog)
                return {"status": "redis_restored", "catalog": catalog, **_summary(report)}

            t = time.perf_counter()
            items, report = source.load()
            report["read_s"] = round(time.perf_counter() - t, 1)
            if not items:
                raise SystemExit(f"no usable rows in {path}")
            # documents in fp32 with the configured backend (onnx and torch agree to cosine 1.0000; decision 0906)
            embedder = embedder_from_settings(settings.model_copy(update={"embedding_onnx_int8": False}), threads=0)
            t = time.perf_counter()
            vectors, report["embed_cached"] = embed_cached(settings, embedder, [search_text(i) for i in items],
                                                           f"ingest {catalog}: embed")
            report["embed_s"] = round(time.perf_counter() - t, 1)
            write_milvus(settings, items, vectors, catalog)
            bm25 = Bm25sIndex.build([tokenize(search_text(i)) for i in items])
            await write_postgres(conn, items, catalog)
            await write_redis(settings, items, catalog)
            report["seconds"] = round(time.perf_counter() - started, 1)
            await conn.execute(
                """INSERT INTO catalog_state (catalog, fingerprint, embedding_model, embedding_dim, item_count,
                       bm25_index, report, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now())
                   ON CONFLICT (catalog) DO UPDATE SET fingerprint=EXCLUDED.fingerprint,
                       embedding_model=EXCLUDED.embedding_model, embedding_dim=EXCLUDED.embedding_dim,
                       item_count=EXCLUDED.item_count, bm25_index=EXCLUDED.bm25_index,
                       report=EXCLUDED.report, updated_at=now()""",
                catalog, fingerprint, settings.embedding_model, int(vectors.shape[1]), len(items),
                bm25.to_bytes(), json.dumps(report))
            return {"status": "loaded", "catalog": catalog, **report}
    finally:
        await pool.close()


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows_read", "items", "rows_rejected", "rejected_by_reason", "rows_repaired", "repaired_by_rule",
            "rows_quarantined", "duplicates", "groups", "excluded_codes", "excluded_code_lines", "skipped_lines",
            "codes_without_sale", "case_variants_merged")
    return {k: report[k] for k in keys if k in report}


def resolve(args: argparse.Namespace, settings: PipelineSettings) -> Source:
    """The catalog and file the arguments name. ``--catalog`` is a catalog name; a file path there (the
    form before catalogs were tenants) still loads that file, into the mapping's catalog."""
    named, path = args.catalog, Path(args.source) if args.source else None
    if named and named not in CATALOGS and Path(named).suffix:
        named, path = None, Path(named)
    mapping = ColumnMapping.from_file(Path(args.mapping)) if args.mapping else None
    if mapping is not None:
        if named and named != mapping.catalog:
            raise SystemExit(f"--mapping is for catalog {mapping.catalog!r}, not {named!r}")
        catalog = mapping.catalog
    else:
        catalog = named or DEFAULT_CATALOG
        if catalog not in CATALOGS:
            raise SystemExit(f"unknown catalog {catalog!r}; known: {', '.join(CATALOGS)} (or give --mapping)")
        mapping = None if catalog == retail_catalog.CATALOG else FLIPKART
    return Source(catalog, path or default_source(settings, catalog), mapping)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.all:  # every catalog from its default file, the default catalog first (see launcher.stack)
        if args.catalog or args.source or args.mapping:
            print("--all takes no --catalog, --source or --mapping", file=sys.stderr)
            return 2
        for name in CATALOGS:
            code = run(argparse.Namespace(**{**vars(args), "all": False, "catalog": name}))
            if code:
                return code
        return 0
    settings = PipelineSettings()
    source = resolve(args, settings)
    if not source.path.is_file():
        print(f"catalog file not found: {source.path}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = asyncio.run(run_ingest(settings, source.path, source.mapping, if_changed=args.if_changed,
                                    catalog=source.catalog))
    rows = int(result.get("rows_read") or result.get("items") or 0)
    print(summary_line(f"ingest {result['catalog']} ({result['status']})", rows, time.perf_counter() - started),
          file=sys.stderr, flush=True)
    if not args.verbose:  # the row lists stay in catalog_state.report; --verbose prints them
        for key in ("rejected", "repaired", "quarantined", "excluded_by_code", "codes_without_sale_examples"):
            result.pop(key, None)
    print(json.dumps(result, indent=None if not args.verbose else 2, default=str))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ingest", help="load a catalog into Postgres, Milvus, BM25 and Redis")
    parser.add_argument("--catalog", help=f"catalog to load: {', '.join(CATALOGS)} (default {DEFAULT_CATALOG}); "
                                          "a file path here loads that file into the default catalog")
    parser.add_argument("--source", help="the catalog's file (default: PICKWISE_CATALOG_PATH or the Flipkart CSV "
                                         "for flipkart, data/retail/online_retail.csv.gz for retail)")
    parser.add_argument("--mapping", help="JSON column mapping for another catalog (see catalog.ColumnMapping)")
    parser.add_argument("--all", action="store_true",
                        help=f"load every catalog ({', '.join(CATALOGS)}) from its default file, in that order")
    parser.add_argument("--if-changed", action="store_true",
                        help="skip when the file fingerprint and embedding model match the last load")
    parser.add_argument("--verbose", action="store_true",
                        help="print the full report incl. rejected, repaired and quarantined rows")
    parser.set_defaults(func=run)
