"""Schemathesis against the running test stack: every operation of the gateway's and each internal service's
OpenAPI document, fed generated valid and invalid input, never answers 5xx, and answers only statuses,
content types and bodies its document declares.

Bounded and deterministic: a fixed number of examples per operation and mode, ``derandomize`` (the seed is
fixed by the operation), no example database, no shrinking; a run takes about a minute and a half on two
cores. Operations under ``/admin/`` change a running service's state (model reload) and are left out."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.e2e

SERVICES = ("gateway", "retriever", "reranker", "generator", "session", "event-consumer")
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 6}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
LEFT_OUT = ("/admin/",)


def _operations(raw: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(raw)
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if not any(part in op.path for part in LEFT_OUT)]


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str],
          statuses: Counter[int]) -> str | None:
    """The first failure of ``operation`` in ``mode``, described, or None; counts the statuses answered."""

    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        statuses[response.status_code] += 1

    try:
        run()
    except Unsatisfiable:  # negative mode, an operation without parameters or body: nothing to make invalid
        return None
    except (Exception, BaseExceptionGroup) as exc:  # recorded (schemathesis raises a FailureGroup): listed below
        return f"{operation.method.upper()} {operation.path} [{mode.value}]: {type(exc).__name__}: {exc}"[:1500]
    return None


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented(stack, api_key, service: str) -> None:
    base_url = stack.url(service)
    raw = httpx.get(f"{base_url}/openapi.json", timeout=30).raise_for_status().json()
    operations = _operations(raw)
    headers = {"X-API-Key": api_key}
    statuses: Counter[int] = Counter()
    failures = [f for op in operations for mode in EXAMPLES
                if (f := _fuzz(op, mode, base_url, headers, statuses))]
    assert not failures, "\n\n".join(failures)
    # the requests got through (a wrong key would make every answer a documented, conforming 401)
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) >= len(operations), statuses
