"""Fixtures of the generator tests: a real HTTP server on 127.0.0.1 speaking the chat-completions API
of Groq (``/<mode>/openai/v1/chat/completions``) and OpenAI (``/<mode>/v1/chat/completions``), where
``<mode>`` is ``good``, ``slow``, ``fail`` or ``invalid``; and a builder of items."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pickwise_common.schemas import Item

SLOW_S = 3.0
PROMPT_TOKENS, COMPLETION_TOKENS = 321, 45


@dataclass
class FakeLLM:
    base: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    def groq_url(self, mode: str) -> str:
        return f"{self.base}/{mode}"

    def openai_url(self, mode: str) -> str:
        return f"{self.base}/{mode}/v1"


def _answer_for(body: dict[str, Any]) -> str:
    """A valid answer citing the first two given items plus one id that was not given."""
    payload = json.loads(body["messages"][-1]["content"])
    ids = [item["item_id"] for item in payload["items"]]
    picks = [{"item_id": i, "why": f"fits \u201c{payload['shopper_query']}\u201d"} for i in ids[:2]]
    picks.append({"item_id": "not-in-the-list", "why": "invented"})
    return json.dumps({"summary": f"Two good picks for \"{payload['shopper_query']}\" \u2014 both in stock.",
                       "picks": picks})


def _completion(model: str, content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}}


def _chunk(model: str, delta: dict[str, Any] | None, usage: dict[str, Any] | None = None) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
    data: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "choices": choices}
    if usage is not None:
        data["usage"] = usage
        data["x_groq"] = {"id": "req-test", "usage": usage}
    return f"data: {json.dumps(data)}\n\n"


def build_app(requests: list[dict[str, Any]]) -> Starlette:
    async def chat(request: Request) -> Response:
        mode = request.path_params["mode"]
        body = await request.json()
        requests.append({"mode": mode, "path": request.url.path, "body": body,
                         "authorization": request.headers.get("authorization")})
        model = body.get("model", "m")
        if mode == "fail":
            return JSONResponse({"error": {"message": "upstream exploded", "type": "server_error"}}, status_code=500)
        if mode == "slow":
            await asyncio.sleep(SLOW_S)
        content = "Sure! Here are some phones you might like." if mode == "invalid" else _answer_for(body)
        if not body.get("stream"):
            return JSONResponse(_completion(model, content))

        async def chunks():
            yield _chunk(model, {"role": "assistant", "content": ""})
            for start in range(0, len(content), 7):
                yield _chunk(model, {"content": content[start:start + 7]})
            yield _chunk(model, None, {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                                       "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS})
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/{mode}/openai/v1/chat/completions", chat, methods=["POST"]),
                             Route("/{mode}/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    requests: list[dict[str, Any]] = []
    server = uvicorn.Server(uvicorn.Config(build_app(requests), host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake LLM server did not start")
        time.sleep(0.02)
    try:
        yield FakeLLM(base=f"http://127.0.0.1:{port}", requests=requests)
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def build_item(item_id: str, *, brand: str = "Samsung", price: float = 12_999, rating: float | None = 4.3,
               ram_gb: float = 6, storage_gb: float = 128) -> Item:
    return Item(item_id=item_id, title=f"{brand} Galaxy {item_id} ({ram_gb:g} GB RAM, {storage_gb:g} GB)",
                brand=brand, model=f"Galaxy {item_id}", ram_gb=ram_gb, storage_gb=storage_gb, price_inr=price,
                original_price_inr=price * 1.2, discount_pct=16.7, rating=rating, price_band="mid",
                group_id=f"g-{item_id}")


@pytest.fixture
def make_item() -> Callable[..., Item]:
    return build_item
