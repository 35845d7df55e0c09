"""Catalogs as tenants (decision 0801): the names Pickwise serves, and how each one namespaces its data.

A catalog owns its items (Postgres ``items.catalog``), its vectors (Milvus rows with ``catalog == name`` in its
collection), its BM25 index (``catalog_state`` row), its Redis keys, its popularity, its models and its events.
The default catalog ``flipkart`` keeps the key names it had before catalogs existed (an empty prefix), so a
running stack and its data need no migration; every other catalog prefixes its Redis keys with ``<name>:``
(in front of any ``{hash tag}``, so a user's keys still share one Redis Cluster slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from pickwise_common.errors import NotFound

DEFAULT_CATALOG = "flipkart"

CatalogName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$",
                                   description="catalog (tenant) to serve; default from the API key, else flipkart")]


@dataclass(frozen=True)
class CatalogSpec:
    name: str
    currency: str          # ISO 4217 code of every price in this catalog
    id_prefix: str         # item ids of this catalog start with it
    key_prefix: str        # in front of every Redis key of this catalog ("" for the default catalog)
    description: str = ""

    def key(self, key: str) -> str:
        return self.key_prefix + key


CATALOGS: dict[str, CatalogSpec] = {
    "flipkart": CatalogSpec("flipkart", "INR", "fm-", "", "Flipkart mobile phones (data/flipkart_mobiles.csv)"),
    "retail": CatalogSpec("retail", "GBP", "or-", "retail:",
                          "UCI Online Retail gift shop (data/retail/online_retail.csv.gz)"),
}


class UnknownCatalog(NotFound):
    code = "unknown_catalog"


def catalog_spec(name: str | None) -> CatalogSpec:
    """The spec of a catalog; ``None`` is the default catalog; an unknown name is a 404 naming the field."""
    name = name or DEFAULT_CATALOG
    spec = CATALOGS.get(name)
    if spec is None:
        raise UnknownCatalog(f"unknown catalog {name!r}; known: {', '.join(sorted(CATALOGS))}",
                             fields=[{"field": "catalog", "message": f"unknown catalog {name!r}"}])
    return spec


def catalog_key(catalog: str | None, key: str) -> str:
    """A Redis key of ``catalog``: ``key`` itself for the default catalog, ``<name>:key`` for the others."""
    return catalog_spec(catalog).key(key)


def catalog_of_item(item_id: str) -> str | None:
    """The catalog an item id belongs to by its prefix, or None."""
    for spec in CATALOGS.values():
        if item_id.startswith(spec.id_prefix):
            return spec.name
    return None
