"""`ingest --all` (what compose and the Helm ingest job run): every catalog from its default file, in order."""

import argparse

import pytest

from pickwise_common.catalogs import CATALOGS
from pickwise_pipeline import ingest

pytestmark = pytest.mark.unit


def _args(**overrides) -> argparse.Namespace:
    base = {"all": True, "catalog": None, "source": None, "mapping": None, "if_changed": True, "verbose": False}
    return argparse.Namespace(**{**base, **overrides})


def test_all_loads_every_catalog_from_its_default_file_in_order(monkeypatch) -> None:
    loaded: list[tuple[str, str]] = []

    async def fake_ingest(settings, path, mapping, *, if_changed, catalog):
        loaded.append((catalog, path.name))
        assert if_changed
        return {"status": "unchanged", "catalog": catalog, "items": 1}

    monkeypatch.setattr(ingest, "run_ingest", fake_ingest)
    assert ingest.run(_args()) == 0
    assert [c for c, _ in loaded] == list(CATALOGS) == ["flipkart", "retail"]
    assert dict(loaded) == {"flipkart": "flipkart_mobiles.csv", "retail": "online_retail.csv.gz"}


@pytest.mark.parametrize("extra", [{"catalog": "retail"}, {"source": "x.csv"}, {"mapping": "m.json"}])
def test_all_refuses_a_single_catalog_option(monkeypatch, extra) -> None:
    monkeypatch.setattr(ingest, "run_ingest", None)  # never reached
    assert ingest.run(_args(**extra)) == 2
