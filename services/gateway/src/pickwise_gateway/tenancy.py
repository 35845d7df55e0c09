"""Which catalog a public request is about (decision 0805): the ``catalog`` it names, else the API key's
catalog when the key is limited to exactly one, else ``flipkart`` (or the key's first catalog when it may not
use flipkart). An event that names none belongs to the key's single catalog, else to the catalog of its
item id's prefix. An unknown name is a 404 naming ``catalog``; a catalog the key may not use is a 403."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pickwise_common.api_keys import ALL_CATALOGS
from pickwise_common.catalogs import DEFAULT_CATALOG, UnknownCatalog, catalog_of_item, catalog_spec
from pickwise_common.errors import Forbidden

CATALOG_PATTERN = r"^[a-z][a-z0-9_]*$"  # as pickwise_common.catalogs.CatalogName


@dataclass(frozen=True)
class CatalogScope:
    """The catalogs the request's API key may use; ``None`` = every catalog (no key record, e.g. a test app)."""

    key_id: str | None = None
    catalogs: tuple[str, ...] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.catalogs is None or ALL_CATALOGS in self.catalogs

    def allows(self, catalog: str) -> bool:
        return self.unrestricted or catalog in (self.catalogs or ())

    def single(self) -> str | None:
        """The key's catalog when it is limited to exactly one."""
        if not self.unrestricted and self.catalogs is not None and len(self.catalogs) == 1:
            return self.catalogs[0]
        return None

    def default(self) -> str:
        single = self.single()
        if single is not None:
            return single
        if self.allows(DEFAULT_CATALOG) or not self.catalogs:
            return DEFAULT_CATALOG
        return self.catalogs[0]

    def resolve(self, requested: str | None, *, field: str = "catalog") -> str:
        """The catalog to serve: ``requested`` or the default; 404 when unknown, 403 when not allowed."""
        name = requested or self.default()
        try:
            spec = catalog_spec(name)
        except UnknownCatalog as exc:
            raise UnknownCatalog(exc.message, fields=[{**f, "field": field} for f in exc.fields]) from exc
        if not self.allows(spec.name):
            who = f"API key {self.key_id!r}" if self.key_id else "this API key"
            raise Forbidden(f"{who} may not use catalog {spec.name!r}",
                                   fields=[{"field": field, "message": f"catalog {spec.name!r} is not allowed "
                                                                       "for this API key"}])
        return spec.name

    def for_event(self, requested: str | None, item_id: str, *, field: str = "catalog") -> str:
        """An event's catalog: named, else the key's single catalog, else its item id's, else the default."""
        if requested:
            return self.resolve(requested, field=field)
        single = self.single()
        if single is not None:
            return self.resolve(single, field=field)
        by_item = catalog_of_item(item_id)
        return self.resolve(by_item, field=field)


def scope_of(key_id: str | None, catalogs: Sequence[str] | None) -> CatalogScope:
    return CatalogScope(key_id=key_id, catalogs=tuple(catalogs) if catalogs is not None else None)
