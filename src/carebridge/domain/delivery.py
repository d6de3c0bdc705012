"""Webhook delivery policy, as pure decisions: when a failed attempt is retried (or the delivery
is dead), when a subscription's failure streak disables it, and what its ``webhook.disabled``
event says.

A 2xx answer within ``policy.timeout`` is a success; anything else is retried with exponential
backoff and full jitter (:func:`backoff`) until ``policy.give_up_after`` has passed since the
delivery was queued, then the delivery is dead (:func:`retry_at`). A subscription's **failure
streak** is its run of failed attempts since its last success: it starts at the oldest
undelivered delivery that failed after that success (:func:`streak_start`). After
``policy.disable_after_failures`` consecutive failed attempts spanning at least
``policy.disable_after`` (:func:`disable_reason`), the subscription is disabled and a
``webhook.disabled`` event is recorded (:func:`disabled_event`). Any success restarts the count.

Signing secrets have the Standard Webhooks form ``whsec_<base64 of 32 random bytes>``
(:func:`new_secret`).
"""

from __future__ import annotations

import base64
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret prefix, not a secret
SECRET_BYTES = 32
DISABLED = "webhook.disabled"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are timed, retried and given up on."""

    timeout: float = 5.0  # seconds for the whole request
    base: timedelta = timedelta(seconds=5)  # the first retry's ceiling
    cap: timedelta = timedelta(hours=1)  # the largest retry ceiling
    floor: timedelta = timedelta(seconds=1)  # no retry comes sooner
    give_up_after: timedelta = timedelta(days=3)  # then the delivery is dead
    disable_after_failures: int = 50
    disable_after: timedelta = timedelta(hours=24)  # the failures must span this long, too
    concurrency: int = 16  # attempts in flight at once
    batch: int = 200  # due deliveries read per round
    fallback_poll: float = 10.0
    """Seconds a delivery loop waits for a wake-up (a new delivery queued, here or, on
    PostgreSQL, anywhere) before it looks anyway: what another process queued on SQLite, a
    missed notification or a lapsed claim is sent within this."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def backoff(attempts: int, policy: DeliveryPolicy, rng: random.Random) -> timedelta:
    """The wait after the ``attempts``-th failure: full jitter, uniform in
    ``[0, min(cap, base * 2**(attempts-1))]``, and at least ``floor``."""
    ceiling = min(policy.cap, policy.base * (2 ** min(max(attempts - 1, 0), 30)))
    wait = timedelta(seconds=rng.uniform(0, ceiling.total_seconds()))
    return max(wait, policy.floor)


def retry_at(
    now: datetime,
    queued_at: datetime,
    attempt: int,
    policy: DeliveryPolicy,
    rng: random.Random,
) -> datetime | None:
    """When to try a delivery again after its ``attempt``-th attempt failed at ``now``: after
    the backoff, never past its give-up deadline (``queued_at + give_up_after``); None once the
    deadline has come (the delivery is dead)."""
    deadline = queued_at + policy.give_up_after
    if now >= deadline:
        return None
    return min(now + backoff(attempt, policy, rng), deadline)


def streak_start(
    oldest_failing: datetime | None, last_success: datetime | None, now: datetime
) -> datetime:
    """Where a subscription's failure streak starts: the queueing time of its oldest undelivered
    delivery that failed after its last success (which the worker reaches promptly), else that
    success, else ``now``."""
    return oldest_failing or last_success or now


def disable_reason(
    failures: int, since: datetime, now: datetime, policy: DeliveryPolicy
) -> str | None:
    """Why a subscription whose streak is ``failures`` failed attempts since ``since`` is
    disabled now (None: it stays enabled)."""
    if failures >= policy.disable_after_failures and now - since >= policy.disable_after:
        return f"{failures} consecutive failed attempts since {since.isoformat()}"
    return None


def disabled_event(
    webhook_id: str, reason: str, failures: int
) -> tuple[str, str, str, dict[str, Any]]:
    """The ``webhook.disabled`` event of a subscription disabled for ``reason`` with
    ``failures`` consecutive failed attempts: its type, kind, entity id and details."""
    details: dict[str, Any] = {
        "state": ["enabled", "disabled"],
        "reason": reason,
        "consecutive_failures": failures,
    }
    return DISABLED, "webhook", webhook_id, details
