"""A request's quick steps (a usable credential taken without awaiting, a 2xx/3xx answer
without Retry-After taken as OK without ``classify``) answer what the awaited and classified
steps answer, over generated statuses and Retry-After values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import stamina
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.clock import FakeTime

from carebridge.connectors.carecloud.client import SurfaceClient
from carebridge.connectors.carecloud.policy import Action, classify
from carebridge.connectors.carecloud.session import Broker
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.errors import CarebridgeError

NOW = datetime(2026, 11, 24, tzinfo=UTC)

retry_after = st.one_of(
    st.none(),
    st.sampled_from(["0", "3", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "", "\xb2"]),
)


def client(
    transport: httpx.MockTransport, expiry: datetime | None
) -> tuple[SurfaceClient[str], Broker[str, None]]:
    async def renew(_: None, __: str | None) -> str:
        return "token"

    broker: Broker[str, None] = Broker(
        "v2", None, renew, expires=lambda _: expiry, clock=lambda: NOW
    )

    def apply(request: httpx.Request, credential: str) -> None:
        request.headers["Authorization"] = f"Bearer {credential}"

    http = httpx.AsyncClient(transport=transport, follow_redirects=False)
    time = FakeTime()  # sleeping moves it: a 429's pause passes at once
    throttle = AimdThrottle(ThrottleConfig(start_rate=100), clock=time.clock, sleep=time.sleep)
    surface = SurfaceClient("v2", http, broker, apply, throttle, attempts=1, deadline=1.0)
    return surface, broker


@settings(max_examples=120, deadline=None)
@given(status=st.sampled_from([200, 204, 301, 304, 399, 400, 404, 429, 503]), after=retry_after)
def test_an_answer_is_taken_as_classify_says(status: int, after: str | None) -> None:
    headers = {} if after is None else {"Retry-After": after}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, request=request)

    async def run() -> tuple[str, float]:
        surface, _ = client(httpx.MockTransport(answer), None)
        try:
            got = await surface.request("GET", "http://up.test/v2/x", endpoint="GET /v2/x")
            kind = f"answer {got.status_code}"
        except CarebridgeError as err:
            kind = type(err).__name__
        except ValueError as err:
            kind = f"ValueError {err}"
        finally:
            await surface.http.aclose()
        return kind, surface.throttle.rate

    with stamina.set_testing(True, attempts=1):
        kind, rate = asyncio.run(run())
    request = httpx.Request("GET", "http://up.test/")
    try:
        verdict = classify(answer(request), surface="v2", idempotent=True)
    except ValueError as err:  # a Retry-After ``float`` refuses: classify's own error, as before
        refused = f"ValueError {err}"
    else:
        refused = None
    if refused is not None:
        assert kind == refused
        return
    if verdict.action is Action.OK:
        assert kind == f"answer {status}"
        assert rate > 100  # the success fed the throttle
    else:
        assert kind != f"answer {status}"


@given(minutes=st.integers(-5, 5))
def test_a_ready_credential_is_what_current_answers_without_renewing(minutes: int) -> None:
    expiry = NOW + timedelta(minutes=minutes)

    async def run() -> None:
        surface, broker = client(httpx.MockTransport(lambda r: httpx.Response(200)), expiry)
        assert broker.ready() is None  # none yet
        first = await broker.current()
        renewals = broker.renewals
        ready = broker.ready()
        current = await broker.current()
        if broker.renewals == renewals:
            assert ready is first
            assert current is first
        else:
            assert ready is None
        await surface.http.aclose()

    asyncio.run(run())
