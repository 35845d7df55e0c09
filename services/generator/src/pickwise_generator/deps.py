"""Dependencies of the generator's routes, declared once as ``Annotated`` aliases (tests can override them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickwise_generator.generation import Generator


def get_generator(request: Request) -> Generator:
    return request.app.state.generator


GeneratorDep = Annotated[Generator, Depends(get_generator)]
