"""The page's config block: JSON the browser never executes, that no value can break out of."""

import json
import re

import pytest

from pickwise_gateway import web

pytestmark = pytest.mark.unit

NASTY = "</script><script>alert(1)</script><!-- & -->"


def _config_block(html: str) -> str:
    match = re.search(r'<script type="application/json" id="pickwise-config">(.*?)</script>', html, re.S)
    assert match, html[:500]
    return match.group(1)


def test_config_is_a_json_data_block_not_code(monkeypatch) -> None:
    monkeypatch.setattr(web, "page_config", lambda settings: {"apiBase": "", "embeddedKey": True, "apiKey": "k-1"})
    html = web.render_page(None)  # type: ignore[arg-type]
    assert json.loads(_config_block(html)) == {"apiBase": "", "embeddedKey": True, "apiKey": "k-1"}
    assert "PICKWISE_CONFIG" not in html
    assert re.findall(r"<script(?![^>]*\b(?:src|type=\"application/json\"))[^>]*>", html) == []


def test_no_value_can_close_the_block_or_open_a_comment(monkeypatch) -> None:
    monkeypatch.setattr(web, "page_config", lambda settings: {"apiBase": NASTY, "embeddedKey": False})
    html = web.render_page(None)  # type: ignore[arg-type]
    block = _config_block(html)
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block)["apiBase"] == NASTY
