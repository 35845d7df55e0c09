"""The vectorised fusion, pool, model match, ordering, grouping and facets give what the per-item definitions
give: the same candidates in the same order with the same scores, the same facets. The definitions are written
out here item by item (as the retriever computed them before they became array operations) and compared on
random catalogs full of ties, variants, unknown values, case-variant brands and relaxed constraints."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pickwise_common.bm25 import tokenize
from pickwise_common.schemas import Constraints, Item, RetrieveRequest
from pickwise_retriever import ordering, vectors
from pickwise_retriever.catalog import Catalog, model_series
from pickwise_retriever.facets import MAX_BRANDS, facet_counts
from pickwise_retriever.query_parser import ParsedQuery
from pickwise_retriever.retrieval import MODEL_MATCH_WEIGHT, SERIES_MATCH_WEIGHT, Retriever, plan

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------- ordering.first


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([-1.5, -0.0, 0.0, 0.25, 0.25, 3.0]),
                          st.sampled_from([0.0, 0.1, 0.1, 0.7])), max_size=60),
       st.integers(0, 70), st.randoms(use_true_random=False))
def test_first_is_the_head_of_the_full_lexicographic_sort(keyed: list[tuple[int, float, float]], m: int,
                                                          rnd: random.Random) -> None:
    rows = np.array(rnd.sample(range(1000), len(keyed)), dtype=np.int64)
    keys = [np.array([k[i] for k in keyed], dtype=float if i else np.int64) for i in range(3)]
    expected = sorted(rows.tolist(), key=lambda n: (*keyed[rows.tolist().index(n)], n))[:m]
    assert ordering.first(rows, keys, m).tolist() == expected


def test_first_of_an_empty_pool_is_empty() -> None:
    assert ordering.first(np.empty(0, dtype=np.int64), [np.empty(0)], 10).tolist() == []


def test_first_breaks_a_full_tie_by_row_number() -> None:
    rows = np.array([9, 3, 7, 1], dtype=np.int64)
    assert ordering.first(rows, [np.zeros(4), np.ones(4)], 2).tolist() == [1, 3]


# ---------------------------------------------------------------- the per-item definitions


def ref_min_max(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {k: 1.0 if hi > 0 else 0.0 for k in scores}
    return {k: (v - lo) / (hi - lo) for k, v in scores.items()}


def ref_fuse(request: RetrieveRequest, bm25: dict[str, float], dense: dict[str, float]) -> dict[str, float]:
    if request.mode == "bm25":
        return ref_min_max(bm25)
    if request.mode == "dense":
        return ref_min_max(dense)
    if request.fusion == "rrf":
        out: dict[str, float] = {}
        for scores in (bm25, dense):
            ranking = [k for k, _ in sorted(scores.items(), key=lambda kv: -kv[1])]
            for rank, item_id in enumerate(ranking, start=1):
                out[item_id] = out.get(item_id, 0.0) + 1.0 / (60 + rank)
        return out
    nb, nd = ref_min_max(bm25), ref_min_max(dense)
    return {k: request.alpha * nb.get(k, 0.0) + (1 - request.alpha) * nd.get(k, 0.0) for k in set(nb) | set(nd)}


def ref_order_key(sort: str, item: Item) -> float:
    if sort == "price_asc":
        return float(item.price or 0.0)
    if sort == "price_desc":
        return -float(item.price or 0.0)
    if sort == "rating_desc":
        return 0.0 if item.rating is None else -float(item.rating)
    return 0.0


def ref_results(catalog: Catalog, parsed: ParsedQuery, c: Constraints, mask: np.ndarray, tier: np.ndarray,
                request: RetrieveRequest, fused: dict[str, float], pool_size: int) -> list[tuple[int, list[int]]]:
    items, index_of = catalog.items, catalog.index_of
    found = [index_of[i] for i in fused if mask[index_of[i]]]
    if parsed.informative and found:
        pool = found
    else:
        everything = np.flatnonzero(mask).tolist()
        if len(everything) > pool_size * 4 and c.sort != "relevance":
            everything = sorted(everything, key=lambda n: ref_order_key(c.sort, items[n]))[:pool_size * 4]
        pool = sorted(set(found) | set(everything))
    if request.mode != "dense" and parsed.informative:
        query, series = set(tokenize(parsed.text)), model_series(parsed.text)
        for n in pool:
            model, bonus = frozenset(tokenize(items[n].model)), 0.0
            if model and query & model:
                bonus += MODEL_MATCH_WEIGHT * len(query & model) / len(model)
            if series and model_series(items[n].model) == series:
                bonus += SERIES_MATCH_WEIGHT
            if bonus:
                fused[items[n].item_id] = fused.get(items[n].item_id, 0.0) + bonus

    def key(n: int) -> tuple[float, ...]:
        item = items[n]
        misses = sum(1 for name, value in parsed.prefer.items() if getattr(item, name) != value)
        relevance = fused.get(item.item_id, 0.0)
        if parsed.prefer_discount and c.sort == "relevance":
            relevance += (item.discount_pct or 0.0) / 100
        rating = 0.0 if item.rating is None else item.rating
        return (int(tier[n]), misses, ref_order_key(c.sort, item), -relevance, -rating, n)

    ordered = sorted(pool, key=key)
    out: list[tuple[int, list[int]]] = []
    seen: set[str] = set()
    for n in ordered:
        if len(out) >= request.k:
            break
        if not request.group_variants:
            out.append((n, []))
        elif items[n].group_id not in seen:
            seen.add(items[n].group_id)
            out.append((n, [v for v in catalog.groups[items[n].group_id] if v != n and mask[v]]))
    ref_results.ordered = ordered  # type: ignore[attr-defined]
    return out


def ref_facets(items: list[Item], ordered: list[int]) -> dict[str, list[tuple[str, int]]]:
    """Brands counted with sets of group ids in first-appearance order; each numeric value by its own filter."""
    brands: dict[str, set[str]] = {}
    for n in ordered:
        if items[n].brand:
            brands.setdefault(items[n].brand, set()).add(items[n].group_id)
    out = {"brand": [(b, len(g)) for b, g in sorted(brands.items(), key=lambda kv: (-len(kv[1]), kv[0].lower()))]
           [:MAX_BRANDS]}

    def models(keep) -> int:  # noqa: ANN001 - a predicate on an item
        return len({items[n].group_id for n in ordered if keep(items[n])})

    edges = [None, 10_000, 15_000, 20_000, 30_000, 50_000, None]
    out["price"] = [(f"{'' if lo is None else f'{lo:g}'}-{'' if hi is None else f'{hi:g}'}", count)
                    for lo, hi in zip(edges, edges[1:], strict=False)
                    if (count := models(lambda i, lo=lo, hi=hi: (lo is None or i.price >= lo)
                                        and (hi is None or i.price <= hi)))]
    for name in ("ram_gb", "storage_gb"):
        values = sorted({getattr(items[n], name) for n in ordered} - {None})
        sizes: list[tuple[str, int]] = []
        if values and values[0] < 1:
            sizes.append(("-0.999", models(lambda i, name=name: getattr(i, name) is not None
                                           and getattr(i, name) <= 0.999)))
        sizes += [(f"{v:g}-{v:g}", models(lambda i, name=name, v=v: getattr(i, name) == v)) for v in values if v >= 1]
        out[name.removesuffix("_gb")] = sizes
    out["rating"] = [(f"{r:g}-", count) for r in (4.5, 4.0, 3.5, 3.0)
                     if (count := models(lambda i, r=r: i.rating is not None and i.rating >= r))]
    return {name: values for name, values in out.items() if values}


# ---------------------------------------------------------------- random catalogs

BRANDS = ["Samsung", "SAMSUNG", "Redmi", "realme", "Realme", "Nokia", ""]
MODELS = ["Galaxy M31", "Galaxy M21", "Note 11", "Note 11S", "Hot 10", "Hot 10 Play", "Hot 11S", "C11 2021", "2.4",
          "105", "Narzo 50"]


def random_catalog(rng: random.Random, size: int) -> Catalog:
    items = []
    for n in range(size):
        brand, model = rng.choice(BRANDS), rng.choice(MODELS)
        ram = rng.choice([None, 0.5, 2.0, 3.0, 4.0, 4.0, 6.0, 8.0])
        storage = rng.choice([None, 0.002, 32.0, 64.0, 64.0, 128.0, 1024.0])
        group = f"g-{brand}-{model}-{ram}-{storage}-{rng.randrange(3)}"
        items.append(Item(item_id=f"r-{n:04d}", title=f"{brand} {model}", brand=brand, model=model,
                          color=rng.choice(["Black", "Blue", "Green"]), ram_gb=ram, storage_gb=storage,
                          price_inr=rng.choice([7999.0, 9999.0, 10000.0, 12999.0, 15000.0, 15999.0, 31999.0,
                                                69900.0]),
                          rating=rng.choice([None, 3.9, 4.1, 4.3, 4.3, 4.6]),
                          discount_pct=rng.choice([None, 0.0, 5.0, 12.0, 30.0]), price_band="budget", group_id=group,
                          attrs={"feature_phone": rng.random() < 0.1}))
    return Catalog.from_items(items)


class QueryEmbedder:
    """Deterministic query vectors: nearby texts need not be nearby, ties are what matter here."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def encode_query(self, text: str) -> np.ndarray:
        return self.matrix[sum(map(ord, text)) % len(self.matrix)]


QUERIES = ["samsung under 15000", "cheapest phone", "hot 10", "note 11s 8gb ram", "galaxy m31 6gb 128gb",
           "best rated phones", "phones with discount", "realme under 10k sorted by price high to low", "redmi note",
           "4gb ram phone", "nokia", "2.4", "samsung galaxy under 5000 with 12gb ram", "phones", "c11 2021 black",
           "highest rated samsung", "hot 11s 64gb", "between 10000 and 16000"]


async def no_popularity(_ids: list[str]) -> dict[str, float]:
    return {}


@pytest.mark.parametrize("seed", range(6))
async def test_results_and_facets_are_the_per_item_definitions(seed: int) -> None:
    rng = random.Random(seed)
    catalog = random_catalog(rng, rng.choice([40, 300, 900]))
    # duplicated rows make exact ties in the dense scores too
    unit = np.random.default_rng(seed).normal(size=(12, 16)).astype(np.float32)
    matrix = unit[[rng.randrange(12) for _ in range(len(catalog))]]
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    retriever = Retriever(catalog, QueryEmbedder(matrix), None, "items", pool_size=rng.choice([8, 40, 400]),
                          dense_in_process_max_items=len(catalog))
    copy = vectors.CatalogVectors([i.item_id for i in catalog.items], matrix, np.ones(len(catalog), dtype=bool))
    retriever._vectors[catalog.name] = (catalog, copy)
    compared = 0
    for query in QUERIES:
        request = RetrieveRequest(query=query, k=rng.choice([1, 5, 10, 50]), mode=rng.choice(["bm25", "dense",
                                  "hybrid", "hybrid"]), fusion=rng.choice(["weighted", "rrf"]),
                                  alpha=rng.choice([0.0, 0.3, 1.0]), group_variants=rng.random() < 0.7)
        response = await retriever.retrieve(request, no_popularity)
        planned = plan(request)
        c, parsed = planned.constraints, planned.parsed
        if c.impossible:
            assert response.candidates == []
            continue
        mask, tier, search, _ = retriever._relax(catalog, c, request.k, request.group_variants)
        if not mask.any():
            assert response.candidates == [] and response.facets == {}
            continue
        pool_size = max(retriever.pool_size, request.k * 8)
        bm25: dict[str, float] = {}
        if request.mode != "dense":
            found = retriever._bm25(catalog, parsed.text if parsed.informative else "", mask, pool_size)
            bm25 = {catalog.items[n].item_id: s for n, s in found.pairs()}
        dense: dict[str, float] = {}
        if request.mode != "bm25":
            text = " ".join([*c.brands, parsed.text]).strip() or "phone"
            rows, values = copy.search_rows(retriever.embedder.encode_query(text), mask, pool_size)
            dense = {catalog.items[n].item_id: s for n, s in zip(rows.tolist(), values.tolist(), strict=True)}
        fused = ref_fuse(request, bm25, dense)
        expected = ref_results(catalog, parsed, c, mask, tier, request, fused, pool_size)
        got = [(catalog.index_of[cand.item.item_id], [catalog.index_of[v] for v in cand.variant_ids])
               for cand in response.candidates]
        assert got == expected, (seed, query)
        assert [cand.fused_score for cand in response.candidates] == \
            [round(fused.get(catalog.items[n].item_id, 0.0), 6) for n, _ in expected]
        assert [cand.bm25_score for cand in response.candidates] == [bm25.get(catalog.items[n].item_id)
                                                                     for n, _ in expected]
        facets = {name: [(v.value, v.count) for v in values] for name, values in response.facets.items()}
        assert facets == ref_facets(catalog.items, ref_results.ordered), (seed, query)  # type: ignore[attr-defined]
        compared += 1
    assert compared >= 10


# ---------------------------------------------------------------- pinned cases


def _phone(n: int, brand: str, group: str, price: float = 9999, ram: float | None = 4,
           rating: float | None = 4.2) -> Item:
    return Item(item_id=f"p-{n}", title=f"{brand} phone", brand=brand, model="Phone", ram_gb=ram, storage_gb=64,
                price_inr=price, rating=rating, price_band="budget", group_id=group)


def test_brands_that_differ_only_in_case_tie_in_the_order_the_results_show_them() -> None:
    items = [_phone(0, "SAMSUNG", "a"), _phone(1, "Samsung", "b"), _phone(2, "Nokia", "c")]
    first_samsung = facet_counts(items, [1, 0, 2])["brand"]
    assert [v.value for v in first_samsung] == ["Nokia", "Samsung", "SAMSUNG"]
    reordered = facet_counts(items, [1, 0, 2], order=lambda rows: np.sort(rows))["brand"]
    assert [v.value for v in reordered] == ["Nokia", "SAMSUNG", "Samsung"]


def test_facets_count_models_when_variants_share_a_group() -> None:
    items = [_phone(0, "Nokia", "a", ram=4), _phone(1, "Nokia", "a", ram=6), _phone(2, "Nokia", "b", ram=4)]
    facets = facet_counts(items, [0, 1, 2])
    assert [(v.value, v.count) for v in facets["brand"]] == [("Nokia", 2)]
    assert [(v.value, v.count) for v in facets["ram"]] == [("4-4", 2), ("6-6", 1)]


def test_a_size_only_outside_the_candidates_is_no_facet_value() -> None:
    items = [_phone(0, "Nokia", "a", ram=4), _phone(1, "Nokia", "b", ram=12), _phone(2, "Nokia", "c", ram=None)]
    assert [v.value for v in facet_counts(items, [0, 2])["ram"]] == ["4-4"]


def test_a_large_pool_orders_only_its_head_yet_returns_the_same_models() -> None:
    # 600 items of 75 models (eight colours each, adjacent in price order): k models need 8k rows of the order,
    # more than the head first sorted (4k)
    items = [_phone(n, "Nokia", f"g{n // 8}", price=1000 + n // 8 * 10, rating=None if n % 7 == 0 else 4.0)
             for n in range(600)]
    retriever = Retriever(Catalog.from_items(items), None, None, "items", pool_size=4)  # type: ignore[arg-type]
    catalog = retriever.catalog
    relevance = np.zeros(len(catalog))
    parsed, c = ParsedQuery(Constraints(), "", False), Constraints(sort="price_desc")
    tier = np.zeros(len(catalog), dtype=np.int64)

    def keys(rows: np.ndarray) -> list[np.ndarray]:
        return retriever._order_keys(catalog, rows, relevance, parsed, c, tier)

    everything = np.arange(len(catalog))
    groups = retriever._first_groups(catalog, everything, keys, np.ones(len(catalog), dtype=bool), 40, True)
    ordered = sorted(range(600), key=lambda n: (-items[n].price, -(items[n].rating or 0.0), n))
    firsts = [n for i, n in enumerate(ordered) if items[n].group_id not in {items[m].group_id for m in ordered[:i]}]
    assert [n for n, _ in groups] == firsts[:40]
    assert all(len(variants) == 7 for _, variants in groups)
    assert not math.isnan(relevance.sum())


def test_results_counts_the_models_a_mask_keeps_or_its_items_ungrouped() -> None:
    catalog = random_catalog(random.Random(3), 200)
    mask = np.random.default_rng(3).random(200) < 0.4
    assert catalog.results(mask) == len({catalog.items[n].group_id for n in np.flatnonzero(mask)})
    assert catalog.results(mask, group_variants=False) == int(mask.sum())
    assert catalog.results(np.zeros(200, dtype=bool)) == 0
