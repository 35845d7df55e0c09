"""The session service's ``type`` filter covers every interaction type plus ``impression``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pickwise_common.schemas import EventType
from pickwise_session.api import EventLogType
from pickwise_session.app import create_app

pytestmark = pytest.mark.unit


def test_type_filter_is_every_interaction_type_and_impression() -> None:
    assert {t.value for t in EventLogType} == {t.value for t in EventType} | {"impression"}


def test_openapi_lists_the_type_filter_as_a_string_enum_in_event_type_order_then_impression() -> None:
    schema = TestClient(create_app()).get("/openapi.json").json()["components"]["schemas"]["EventLogType"]

    assert schema["type"] == "string"
    assert schema["enum"] == [t.value for t in EventType] + ["impression"]
    assert schema["description"].startswith("The ``type`` filter")


def test_a_type_filter_member_is_its_string() -> None:
    assert EventLogType("click") == "click"
    assert EventLogType("impression").value == "impression"
