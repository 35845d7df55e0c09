"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served entirely by the service: the UI bundles ship in the
``fastapi-offline`` package and are mounted at ``/docs/assets``, so the pages work with no network and
reference no other host. The pages contain no inline script or style (decision 0702 has the
Content-Security-Policy each page needs)."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
# the UI bundles (fastapi-offline) first, then our own starter script and page style
ASSET_PACKAGES = [("fastapi_offline", "static"), ("pickwise_common", "docs_static")]
# ReDoc's sidebar shows a logo fetched from Redocly's CDN; an empty src makes the image fail at once and
# ReDoc then hides it (its onError), so the page names no other host
REDOC_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def redoc_bundle() -> bytes:
    """ReDoc's standalone bundle without the one URL of another host it would load."""
    text = (resources.files("fastapi_offline") / "static" / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_LOGO_URL, "").encode("utf-8")


def swagger_ui_page(title: str, openapi_url: str, assets_url: str) -> str:
    """The Swagger UI page: stylesheet, bundle and a starter script, all from ``assets_url``."""
    t, spec, a = escape(title), escape(openapi_url, quote=True), escape(assets_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{t} - Swagger UI</title>
<link rel="icon" type="image/png" href="{a}/favicon.png">
<link rel="stylesheet" href="{a}/swagger-ui.css">
<link rel="stylesheet" href="{a}/docs.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{spec}"></div>
<script src="{a}/swagger-ui-bundle.js"></script>
<script src="{a}/swagger-init.js"></script>
</body>
</html>
"""


def redoc_page(title: str, openapi_url: str, assets_url: str) -> str:
    """The ReDoc page: the standalone bundle renders the ``<redoc spec-url>`` element by itself."""
    t, spec, a = escape(title), escape(openapi_url, quote=True), escape(assets_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t} - ReDoc</title>
<link rel="icon" type="image/png" href="{a}/favicon.png">
<link rel="stylesheet" href="{a}/docs.css">
</head>
<body>
<redoc spec-url="{spec}"></redoc>
<script src="{a}/redoc.standalone.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to an app created with ``docs_url=None, redoc_url=None``."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(swagger_ui_page(app.title, root + openapi_url, root + ASSETS_PATH))

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(redoc_page(app.title, root + openapi_url, root + ASSETS_PATH))

    @app.get(f"{ASSETS_PATH}/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.mount(ASSETS_PATH, StaticFiles(packages=ASSET_PACKAGES), name="docs-assets")

