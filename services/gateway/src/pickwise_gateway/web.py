"""The built-in web page at ``/``: one static HTML/JS/CSS bundle in the package, no build step.

With ``PICKWISE_ENVIRONMENT=local`` (set by ``make run``; the default is ``production``) the page receives the
first plain API key in its config, so it works out of the box; anyone who can load the
page can read that key, so production turns it off and the shopper-facing storefront calls the API from
its own backend (or the page asks for a key and keeps it in localStorage)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.deps import SettingsDep

CONFIG_PLACEHOLDER = "<!--PICKWISE_CONFIG-->"
STATIC_DIR = resources.files("pickwise_gateway") / "static"

router = APIRouter()


@lru_cache(maxsize=1)
def _template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def page_config(settings: GatewaySettings) -> dict[str, object]:
    config: dict[str, object] = {"apiBase": "", "embeddedKey": False}
    # only a plain key of a local environment can be embedded: a configured key is known by its digest alone
    plain = next((k.plain for k in settings.api_keys if k.plain is not None), None) if settings.embed_key() else None
    if plain is not None:
        config["apiKey"] = plain.get_secret_value()
        config["embeddedKey"] = True
    return config


def render_page(settings: GatewaySettings) -> str:
    """The page with its config in a JSON data block: the browser never runs it (the Content-Security-Policy
    allows no inline script) and app.js reads it. ``<``, ``>`` and ``&`` are written as JSON escapes, so no
    value can close the element or open a comment."""
    payload = (json.dumps(page_config(settings))
               .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return _template().replace(CONFIG_PLACEHOLDER,
                               f'<script type="application/json" id="pickwise-config">{payload}</script>')


@router.get("/", include_in_schema=False)
async def index(settings: SettingsDep) -> HTMLResponse:
    return HTMLResponse(render_page(settings),
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "same-origin"})


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
