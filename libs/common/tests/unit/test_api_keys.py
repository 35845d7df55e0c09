"""API key records: digests, ids, scopes, catalogs, rotation, and the env format of PICKWISE_API_KEYS."""

import json

import pytest
from pydantic import ValidationError

from pickwise_common.api_keys import digest, find_key, parse_api_keys, plain_keys_outside_local
from pickwise_common.settings import ServiceSettings

pytestmark = pytest.mark.unit


def records(*entries: dict) -> str:
    return json.dumps(list(entries))


def test_environment_defaults_to_production() -> None:
    assert ServiceSettings().environment == "production"


def test_json_records_match_by_digest_and_never_hold_the_key() -> None:
    settings = ServiceSettings(api_keys=records({"id": "web", "sha256": digest("s3cret"), "scopes": ["read"]}))
    key = find_key("s3cret", settings.api_keys)
    assert key is not None and key.id == "web"
    assert key.plain is None
    assert "s3cret" not in repr(settings.api_keys)
    assert find_key("other", settings.api_keys) is None


def test_two_keys_are_valid_during_rotation() -> None:
    keys = parse_api_keys(records({"id": "web-2026-10", "sha256": digest("old")},
                                  {"id": "web-2026-11", "sha256": digest("new")}))
    assert find_key("old", keys).id == "web-2026-10"
    assert find_key("new", keys).id == "web-2026-11"


def test_plain_keys_get_every_scope_and_an_id_that_hides_them() -> None:
    keys = parse_api_keys("dev-local-key, second")
    assert [k.id for k in keys] == ["local-1", "local-2"]
    assert keys[0].has_scope("events") and keys[0].has_scope("admin")
    assert keys[0].allows_catalog("retail")


def test_plain_keys_are_flagged_outside_a_local_environment() -> None:
    keys = parse_api_keys("dev-local-key")
    assert plain_keys_outside_local(keys, "production") == ["local-1"]
    assert plain_keys_outside_local(keys, "local") == []


def test_catalog_list_limits_a_key() -> None:
    (key,) = parse_api_keys(records({"id": "retail", "sha256": digest("k"), "catalogs": ["retail"]}))
    assert key.allows_catalog("retail")
    assert not key.allows_catalog("flipkart")


@pytest.mark.parametrize("catalogs", [["retial"], [], ["retail", "books"]])
def test_a_record_naming_an_unknown_catalog_is_refused(catalogs: list[str]) -> None:
    with pytest.raises(ValidationError, match="catalog"):
        ServiceSettings(api_keys=records({"id": "shop", "sha256": digest("k"), "catalogs": catalogs}))


@pytest.mark.parametrize("entry", [
    {"id": "x", "sha256": "not-hex"},
    {"id": "x", "sha256": digest("k"), "scopes": ["write"]},
    {"id": "bad id", "sha256": digest("k")},
    {"id": "x", "sha256": digest("k"), "key": "plain"},
], ids=["digest", "scope", "id", "unknown-field"])
def test_malformed_records_are_rejected(entry: dict) -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(api_keys=records(entry))


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(ValidationError, match="unique"):
        ServiceSettings(api_keys=records({"id": "a", "sha256": digest("1")}, {"id": "a", "sha256": digest("2")}))
