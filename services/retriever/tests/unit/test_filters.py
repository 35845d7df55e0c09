"""Filters over the retriever's catalog (the shared constraint model on its columns), and the Milvus search."""

import pytest
from pymilvus.exceptions import MilvusException

from pickwise_common.constraints import milvus_filter, satisfies
from pickwise_common.errors import DependencyUnavailable
from pickwise_common.schemas import Constraints, Item
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.dense import search

pytestmark = pytest.mark.unit


def _item(n: int, brand: str, price: float, ram: float | None, rating: float | None, color: str = "Black",
          group: str | None = None) -> Item:
    return Item(item_id=f"t-{n}", title=f"{brand} {n}", brand=brand, model=str(n), color=color, ram_gb=ram,
                storage_gb=64, price_inr=price, rating=rating, price_band="budget" if price < 15000 else "mid",
                group_id=group or f"g{n}", attrs={"feature_phone": ram is not None and ram < 1})


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.from_items([
        _item(1, "Samsung", 12000, 4, 4.5), _item(2, "Samsung", 18000, 8, None, "Ocean Blue"),
        _item(3, "Nokia", 1500, 0.004, 4.1), _item(4, "Apple", 70000, None, 4.7),
        _item(5, "Samsung", 12500, 4, 4.5, "Mint Green", group="g1"),
    ])


def test_mask_applies_every_bound(catalog: Catalog) -> None:
    mask = catalog.mask(Constraints(brands=["samsung"], price_max_inr=15000, ram_gb_min=4))
    assert [catalog.items[n].item_id for n in mask.nonzero()[0]] == ["t-1", "t-5"]


def test_unknown_values_never_satisfy_a_bound(catalog: Catalog) -> None:
    mask = catalog.mask(Constraints(ram_gb_max=8))
    assert "t-4" not in {catalog.items[n].item_id for n in mask.nonzero()[0]}
    assert satisfies(catalog.items[1], Constraints(rating_min=4.0)) == {"rating_min": False}


def test_colour_and_feature_phone(catalog: Catalog) -> None:
    assert catalog.mask(Constraints(colors=["blue"])).nonzero()[0].tolist() == [1]
    assert catalog.mask(Constraints(feature_phone=True)).nonzero()[0].tolist() == [2]


def test_variants_share_a_group(catalog: Catalog) -> None:
    assert catalog.groups["g1"] == [0, 4]
    assert len(catalog.groups) == 4


def test_milvus_expression_names_every_constraint(catalog: Catalog) -> None:
    expr = milvus_filter(Constraints(brands=["samsung"], brands_exclude=["Apple"], price_min_inr=1000,
                                     price_max_inr=15000, ram_gb_min=4, rating_min=4.2, price_bands=["budget"],
                                     feature_phone=False, colors=["blue"]), catalog.columns)
    assert 'brand in ["Samsung"]' in expr
    assert 'brand not in ["Apple"]' in expr
    assert "price >= 1000.0" in expr and "(price >= 0 and price <= 15000.0)" in expr
    assert "ram_gb >= 4.0" in expr and "rating >= 4.199999809265137" in expr
    assert 'price_band in ["budget"]' in expr and "feature_phone == false" in expr
    assert 'color in ["ocean blue"]' in expr


def test_colour_with_a_space_or_hyphen_is_a_valid_expression(catalog: Catalog) -> None:
    assert milvus_filter(Constraints(colors=["ocean blue", "mint-green"]), catalog.columns) == \
        'color in ["mint green", "ocean blue"]'


def test_no_constraints_no_expression(catalog: Catalog) -> None:
    assert milvus_filter(Constraints(), catalog.columns) == ""


def test_satisfies_reports_each_parsed_constraint(catalog: Catalog) -> None:
    sat = satisfies(catalog.items[0], Constraints(brands=["Samsung"], price_max_inr=10000, ram_gb_min=4))
    assert sat == {"brands": True, "price_max_inr": False, "ram_gb_min": True}


class _FlakyClient:
    """Fails the first call like a gRPC channel closed by the server, then answers."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.calls = 0

    def search(self, *_args, **_kwargs):
        self.calls += 1
        if self.calls == 1:
            raise MilvusException(code=self.code, message="channel unavailable")
        return [[{"entity": {"item_id": "t-1"}, "distance": 0.5}]]


def test_search_retries_once_when_the_channel_was_dropped() -> None:
    client = _FlakyClient(code=2)
    assert search(client, "items", [0.1], "", 5) == [("t-1", 0.5)]
    assert client.calls == 2


def test_search_failure_is_dependency_unavailable() -> None:
    with pytest.raises(DependencyUnavailable, match="vector search failed"):
        search(_FlakyClient(code=100), "items", [0.1], "", 5)
