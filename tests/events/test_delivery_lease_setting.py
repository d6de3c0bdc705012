"""The webhook delivery lease's length is an operator setting (how long the deliveries a killed
process had claimed wait before another loop sends them), read once per deployment, with bad
values refused in one line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carebridge.errors import ConfigError
from carebridge.store.webhooks import LEASE
from carebridge.wiring.api import DELIVERY_LEASE_ENV, delivery_lease


def test_the_lease_defaults_to_the_stores_and_takes_whole_seconds() -> None:
    assert delivery_lease({}) == LEASE == timedelta(minutes=2)
    assert delivery_lease({DELIVERY_LEASE_ENV: " "}) == LEASE
    assert delivery_lease({DELIVERY_LEASE_ENV: "10"}) == timedelta(seconds=10)
    assert delivery_lease({DELIVERY_LEASE_ENV: "3600"}) == timedelta(hours=1)


@pytest.mark.parametrize("bad", ["9", "3601", "0", "-20", "1.5", "two minutes", "1e3"])
def test_a_lease_outside_ten_seconds_to_an_hour_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=DELIVERY_LEASE_ENV):
        delivery_lease({DELIVERY_LEASE_ENV: bad})
