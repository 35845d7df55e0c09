"""generator service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from fastapi import FastAPI

from pickwise_common.app import service_app

from pickwise_generator.config import GeneratorSettings


def create_app(settings: GeneratorSettings | None = None) -> FastAPI:
    settings = settings or GeneratorSettings()
    return service_app("generator", settings, description="Grounded answer text: Groq, OpenAI-compatible, offline template.")
