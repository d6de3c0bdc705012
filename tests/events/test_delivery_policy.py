"""The webhook delivery policy as pure decisions (``domain.delivery``), and the subscription use
cases' checks over an in-memory store (``services.webhooks``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carebridge.domain.delivery import (
    DeliveryPolicy,
    backoff,
    disable_reason,
    disabled_event,
    new_secret,
    retry_at,
    streak_start,
)
from carebridge.errors import BadRequest, Forbidden, NotFound, UrlRefused
from carebridge.ports.webhooks import Subscription
from carebridge.services.records import Principal
from carebridge.services.webhooks import Webhooks, subscribed_types

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
POLICY = DeliveryPolicy()


def test_a_failed_attempt_is_retried_after_its_backoff_until_the_give_up_deadline() -> None:
    queued = NOW - timedelta(hours=1)
    for attempt in range(1, 12):
        at = retry_at(NOW, queued, attempt, POLICY, random.Random(attempt))
        assert at is not None
        ceiling = min(POLICY.cap, POLICY.base * 2 ** (attempt - 1))
        assert NOW + POLICY.floor <= at <= NOW + max(ceiling, POLICY.floor)
    near = NOW - POLICY.give_up_after + timedelta(seconds=2)
    assert retry_at(NOW, near, 20, POLICY, random.Random(1)) <= near + POLICY.give_up_after
    assert retry_at(NOW, NOW - POLICY.give_up_after, 3, POLICY, random.Random(1)) is None
    assert backoff(0, POLICY, random.Random(1)) >= POLICY.floor


def test_a_streak_disables_only_when_long_and_old_enough() -> None:
    since = NOW - POLICY.disable_after
    many = POLICY.disable_after_failures
    assert disable_reason(many - 1, since, NOW, POLICY) is None
    assert disable_reason(many, since + timedelta(seconds=1), NOW, POLICY) is None
    reason = disable_reason(many, since, NOW, POLICY)
    assert reason == f"{many} consecutive failed attempts since {since.isoformat()}"
    assert disabled_event("whk_1", reason, many) == (
        "webhook.disabled",
        "webhook",
        "whk_1",
        {"state": ["enabled", "disabled"], "reason": reason, "consecutive_failures": many},
    )


def test_a_streak_starts_at_its_oldest_failure_else_the_last_success() -> None:
    failing, success = NOW - timedelta(hours=3), NOW - timedelta(hours=5)
    assert streak_start(failing, success, NOW) == failing
    assert streak_start(None, success, NOW) == success
    assert streak_start(None, None, NOW) == NOW
    assert new_secret().startswith("whsec_")
    assert new_secret() != new_secret()


class _Store:
    """An in-memory store of one tenant's subscriptions (only what the checks reach)."""

    def __init__(self) -> None:
        self.hooks: dict[str, Subscription] = {}

    async def create(self, tenant_id: str, **fields: Any) -> Subscription:
        hook = Subscription(
            id=f"whk_{len(self.hooks)}",
            tenant_id=tenant_id,
            url=fields["url"],
            event_types=fields["event_types"],
            scopes=fields["scopes"],
            state="enabled",
            consecutive_failures=0,
            previous_secret_expires_at=None,
            created_at=fields["now"],
            disabled_at=None,
        )
        self.hooks[hook.id] = hook
        return hook

    async def get(self, tenant_id: str, webhook_id: str) -> Subscription | None:
        hook = self.hooks.get(webhook_id)
        return hook if hook is not None and hook.tenant_id == tenant_id else None

    async def deliveries(self, tenant_id: str, webhook_id: str, **page: Any) -> list[Any]:
        raise AssertionError("a bad cursor reaches no query")

    async def replay(self, tenant_id: str, webhook_id: str, **what: Any) -> int | None:
        return None if await self.get(tenant_id, webhook_id) is None else 0


WRITER = Principal("key_w", "ten_a", frozenset({"webhook.write", "webhook.read", "patient.read"}))


@pytest.mark.anyio
async def test_subscriptions_hear_what_their_creator_may_read() -> None:
    store = _Store()
    hooks = Webhooks(store, lambda: NOW, secrets=lambda: "whsec_fixed")  # type: ignore[arg-type]
    made = await hooks.create(WRITER, "https://hooks.example.com/in", ["patient.*"])
    assert (made.secret, made.subscription.event_types) == ("whsec_fixed", ("patient.*",))
    assert made.subscription.scopes == WRITER.scopes
    assert subscribed_types(WRITER, ["*"]) == subscribed_types(WRITER, [])
    with pytest.raises(Forbidden, match=r"claim\.read"):
        await hooks.create(WRITER, "https://hooks.example.com/in", ["claim.paid"])
    with pytest.raises(UrlRefused):
        await hooks.create(WRITER, "http://127.0.0.1/in", [])
    with pytest.raises(BadRequest) as bad:
        await hooks.deliveries(WRITER, made.subscription.id, limit=10, cursor="x1")
    assert bad.value.field == "cursor"
    other = Principal("key_b", "ten_b", WRITER.scopes)
    with pytest.raises(NotFound):
        await hooks.get(other, made.subscription.id)
    with pytest.raises(NotFound):
        await hooks.replay(other, made.subscription.id, 1)
    reader = Principal("key_r", "ten_a", frozenset({"webhook.read"}))
    with pytest.raises(Forbidden):
        await hooks.replay(reader, made.subscription.id, 1)
