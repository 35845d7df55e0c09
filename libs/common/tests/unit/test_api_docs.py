"""/docs and /redoc from the app factory: every asset served by the service itself, no other host named,
no inline script or style (so a Content-Security-Policy of default-src 'self' does not blank the page)."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from pickwise_common.app import service_app
from pickwise_common.settings import ServiceSettings

pytestmark = pytest.mark.unit

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class Page(HTMLParser):
    """The URLs a page makes the browser load, and any inline script or style it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "spec-url", "data-openapi-url"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if "style" in values or any(name.startswith("on") for name in values):
            self.inline.append(f"<{tag}> attribute")
        if tag == "style" or (tag == "script" and not values.get("src")):
            self.inline.append(f"<{tag}> element")
        self._tag = tag

    def handle_data(self, data: str) -> None:
        if self._tag == "script" and data.strip():
            self.inline.append("script text")

    def handle_endtag(self, tag: str) -> None:
        self._tag = None


def make_app() -> FastAPI:
    return service_app("unit", ServiceSettings(service_name="unit", api_keys="a"))


def client(app: FastAPI, root_path: str = "") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, root_path=root_path), base_url="http://t")


async def parsed(c: httpx.AsyncClient, path: str) -> Page:
    response = await c.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page()
    page.feed(response.text)
    return page


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_page_names_no_other_host(path: str) -> None:
    async with client(make_app()) as c:
        page = await parsed(c, path)
    assert page.urls
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        assert url.startswith("/"), url


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_page_has_no_inline_script_or_style(path: str) -> None:
    async with client(make_app()) as c:
        page = await parsed(c, path)
    assert page.inline == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_every_url_of_the_docs_page_is_served_by_the_service(path: str) -> None:
    async with client(make_app()) as c:
        page = await parsed(c, path)
        for url in page.urls:
            response = await c.get(url)
            assert response.status_code == 200, url
            kind = next((t for ext, t in CONTENT_TYPES.items() if url.endswith(ext)), "application/json")
            assert kind in response.headers["content-type"], (url, response.headers["content-type"])
            assert len(response.content) > 50, url


async def test_swagger_starter_script_loads_this_services_openapi() -> None:
    async with client(make_app()) as c:
        page = await parsed(c, "/docs")
        script = (await c.get("/docs/assets/swagger-init.js")).text
    assert "/openapi.json" in page.urls
    assert "data-openapi-url" in script
    assert "://" not in script
    assert "validatorUrl: null" in script  # no badge fetched from validator.swagger.io


async def test_docs_behind_a_path_prefix_use_the_prefix() -> None:
    async with client(make_app(), root_path="/api") as c:
        page = await parsed(c, "/docs")
    assert "/api/openapi.json" in page.urls
    assert all(url.startswith("/api/") for url in page.urls), page.urls


async def test_a_missing_docs_asset_is_a_json_404() -> None:
    async with client(make_app()) as c:
        response = await c.get("/docs/assets/nothing.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_docs_routes_stay_out_of_the_openapi_document() -> None:
    async with client(make_app()) as c:
        paths = (await c.get("/openapi.json")).json()["paths"]
    assert not any(p.startswith(("/docs", "/redoc")) for p in paths)


async def test_redoc_bundle_loads_no_logo_from_another_host() -> None:
    async with client(make_app()) as c:
        script = await c.get("/docs/assets/redoc.standalone.js")
    assert script.status_code == 200
    assert len(script.content) > 500_000  # the whole bundle, not a stub
    assert "cdn.redoc.ly" not in script.text
