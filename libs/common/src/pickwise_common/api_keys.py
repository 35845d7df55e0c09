"""API keys of the public API: stored as sha256 digests, each with an id, scopes and catalogs (decision 0751).

``PICKWISE_API_KEYS`` is either a JSON list of key records::

    [{"id": "web", "sha256": "<hex digest of the key>", "scopes": ["read", "events"], "catalogs": ["*"]}]

``catalogs`` scopes a key: ``["retail"]`` may use only the retail catalog, which is also its default
(decision 0805); names must be known catalogs (or ``*``).

or, in ``PICKWISE_ENVIRONMENT=local`` only, comma-separated plain keys (``dev-local-key``), each with every
scope and catalog. ``pickwise keys hash <key>`` prints the record of a key. Two records with different ids
are how a key is rotated: both are valid until the old one is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from pickwise_common.catalogs import CATALOGS

Scope = Literal["read", "events", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "events", "admin")
ALL_CATALOGS = "*"
LOCAL_ENVIRONMENT = "local"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKey(BaseModel):
    """One accepted key. ``plain`` is kept only for a plain key of a local environment (the web page of
    ``make run`` embeds it); a configured key is known by its digest alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = ("read",)
    catalogs: tuple[str, ...] = (ALL_CATALOGS,)
    plain: SecretStr | None = Field(default=None, exclude=True)

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("catalogs")
    @classmethod
    def _known_catalogs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """A typo in a scoped key would otherwise lock it out of every catalog: refused at start-up."""
        if not value:
            raise ValueError("catalogs must name at least one catalog, or '*' for all")
        unknown = [c for c in value if c != ALL_CATALOGS and c not in CATALOGS]
        if unknown:
            raise ValueError(f"unknown catalog {unknown[0]!r}; known: {', '.join(sorted(CATALOGS))} or '*'")
        return value

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes

    def allows_catalog(self, catalog: str) -> bool:
        return ALL_CATALOGS in self.catalogs or catalog in self.catalogs

    def record(self) -> dict[str, object]:
        """What goes into ``PICKWISE_API_KEYS`` for this key (never the key itself)."""
        return {"id": self.id, "sha256": self.sha256, "scopes": list(self.scopes), "catalogs": list(self.catalogs)}


def plain_key(key: str, *, index: int) -> ApiKey:
    """A plain key of a local environment: every scope, every catalog, an id that does not reveal it."""
    return ApiKey(id=f"local-{index}", sha256=digest(key), scopes=SCOPES, catalogs=(ALL_CATALOGS,),
                  plain=SecretStr(key))


def parse_api_keys(value: object) -> list[ApiKey]:
    """``PICKWISE_API_KEYS`` (JSON records or comma-separated plain keys) -> key records."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return [plain_key(k.strip(), index=i) for i, k in enumerate(text.split(","), start=1) if k.strip()]
    if not isinstance(value, Iterable) or isinstance(value, dict):
        raise ValueError("PICKWISE_API_KEYS must be a JSON list of key records or comma-separated keys")
    keys: list[ApiKey] = []
    for index, entry in enumerate(value, start=1):
        if isinstance(entry, ApiKey):
            keys.append(entry)
        elif isinstance(entry, str):
            keys.append(plain_key(entry, index=index))
        else:
            keys.append(ApiKey.model_validate(entry))
    ids = [k.id for k in keys]
    if len(set(ids)) != len(ids):
        raise ValueError(f"API key ids must be unique, got {ids}")
    return keys


def plain_keys_outside_local(keys: list[ApiKey], environment: str) -> list[str]:
    """Ids of plain keys configured outside a local environment (they must be given as digests)."""
    if environment == LOCAL_ENVIRONMENT:
        return []
    return [k.id for k in keys if k.plain is not None]


def find_key(provided: str | None, keys: list[ApiKey]) -> ApiKey | None:
    """The record whose digest matches ``provided`` (constant-time comparison against every record)."""
    if not provided:
        return None
    provided_digest = digest(provided).encode()
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(provided_digest, key.sha256.encode()) and found is None:
            found = key
    return found
