"""Stream specs JetStream would refuse are refused when they are written."""

import pytest

from kit.events import StreamSpec
from kit.events.streams import DEPLOY, PIPELINE


def test_a_duplicate_window_longer_than_the_max_age_is_refused() -> None:
    with pytest.raises(ValueError, match=r"duplicate window .* exceeds the max age"):
        StreamSpec("SHORT", ("short.>",), max_age_seconds=60, duplicate_window_seconds=120)


def test_deploy_and_pipeline_events_are_deduplicated_for_a_day() -> None:
    for spec in (DEPLOY, PIPELINE):
        assert spec.duplicate_window_seconds == 24 * 3600
        assert spec.max_age_seconds >= spec.duplicate_window_seconds
