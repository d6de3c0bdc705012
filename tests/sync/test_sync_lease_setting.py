"""The sync lease's length is an operator setting (how long a killed sync blocks its streams),
read once per deployment, with bad values refused in one line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carebridge.errors import ConfigError
from carebridge.sync.engine import LEASE_TTL
from carebridge.wiring.api import LEASE_ENV, sync_lease


def test_the_lease_defaults_to_the_engines_and_takes_whole_seconds() -> None:
    assert sync_lease({}) == LEASE_TTL
    assert sync_lease({LEASE_ENV: " "}) == LEASE_TTL
    assert sync_lease({LEASE_ENV: "15"}) == timedelta(seconds=15)
    assert sync_lease({LEASE_ENV: "3600"}) == timedelta(hours=1)


@pytest.mark.parametrize("bad", ["9", "3601", "0", "-20", "1.5", "two minutes", "1e3"])
def test_a_lease_outside_ten_seconds_to_an_hour_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=LEASE_ENV):
        sync_lease({LEASE_ENV: bad})
