"""``CAREBRIDGE_FEED_INTERVAL``: the change feed's poll interval (2 s by default, 0 turns the
feed off), refused with a typed error when it is not a number of seconds in range."""

from __future__ import annotations

import pytest

from carebridge.errors import ConfigError
from carebridge.sync.feed import FEED_INTERVAL
from carebridge.wiring.api import FEED_ENV, feed_interval


def test_the_feed_polls_every_two_seconds_by_default() -> None:
    assert feed_interval({}) == FEED_INTERVAL == 2.0
    assert feed_interval({FEED_ENV: " "}) == FEED_INTERVAL


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0.0), ("0.5", 0.5), ("5", 5.0), ("3600", 3600.0)]
)
def test_a_setting_in_range_is_taken(text: str, seconds: float) -> None:
    assert feed_interval({FEED_ENV: text}) == seconds


@pytest.mark.parametrize("text", ["-1", "0.1", "3601", "often", "nan", "inf"])
def test_a_setting_out_of_range_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        feed_interval({FEED_ENV: text})
