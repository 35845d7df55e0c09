"""Routes of the generator: a JSON answer, or the same answer streamed as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from pickwise_common.catalogs import catalog_spec
from pickwise_common.schemas import Answer, ErrorBody, GenerateRequest
from pickwise_generator.deps import GeneratorDep

router = APIRouter()


UNKNOWN_CATALOG = {404: {"model": ErrorBody, "description": "unknown `catalog` (its currency decides how prices read)"}}


@router.post("/v1/generate", response_model=Answer, tags=["generate"], responses=UNKNOWN_CATALOG,
             summary="A grounded answer citing only the given items (Groq -> OpenAI-compatible -> template)")
async def generate(body: GenerateRequest, generator: GeneratorDep) -> Answer:
    catalog_spec(body.catalog)
    return await generator.generate(body)


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/v1/generate/stream", tags=["generate"], response_class=StreamingResponse, responses=UNKNOWN_CATALOG,
             summary="The same answer as server-sent events: provider, delta*, fallback?, answer, done")
async def generate_stream(body: GenerateRequest, generator: GeneratorDep) -> StreamingResponse:
    catalog_spec(body.catalog)  # before the stream starts: once it has, an error can no longer be a status
    async def events() -> AsyncIterator[str]:
        async for event, data in generator.stream(body):
            yield sse(event, data)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
