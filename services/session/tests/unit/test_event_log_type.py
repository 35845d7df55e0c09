"""The session service's ``type`` filter covers every interaction type plus ``impression``."""

from __future__ import annotations

import pytest

from pickwise_common.schemas import EventType
from pickwise_session.api import EventLogType

pytestmark = pytest.mark.unit


def test_type_filter_is_every_interaction_type_and_impression() -> None:
    assert {t.value for t in EventLogType} == {t.value for t in EventType} | {"impression"}
