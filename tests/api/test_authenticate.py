"""``POST /authenticate``: the three steps over HTTP, their problems, and secrets at rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.api import problems
from carebridge.api.routes.auth import router
from carebridge.services.sessions import InvalidMfaStep, Locked, Sessions
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.people import SqlPeople, add_user, totp_source
from carebridge.store.schema import tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
START = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SEED = "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TF"
PASSWORDS = {"ana": "ana-Secret-Passphrase-1", "bo": "bo-Secret-Passphrase-2"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def install_sign_in_problems(app: FastAPI) -> None:
    """The mappings proposed for ``problems.install`` (until it has them)."""

    @app.exception_handler(Locked)
    async def _locked(request: Request, exc: Locked) -> JSONResponse:
        del request
        return problems.problem(
            423, "Locked", str(exc), headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(InvalidMfaStep)
    async def _invalid_mfa_step(request: Request, exc: InvalidMfaStep) -> JSONResponse:
        del request
        return problems.problem(422, "Unprocessable Content", str(exc))


@dataclass
class Api:
    client: httpx.AsyncClient
    sessions: Sessions
    people: SqlPeople
    clock: Clock
    db: Path


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    db = tmp_path / "store.db"
    migrate.upgrade(f"sqlite:///{db}")
    engine: AsyncEngine = create_engine(f"sqlite:///{db}")
    vault = Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))
    async with engine.begin() as conn:
        await conn.execute(
            tenants.insert().values(
                id="ten_a", name="ten_a", upstream="carecloud", settings={}, created_at=START
            )
        )
    await add_user(
        engine,
        vault,
        tenant_id="ten_a",
        username="ana",
        password=PASSWORDS["ana"],
        scopes={"patient.read", "appointment.read"},
        now=START,
    )
    await add_user(
        engine,
        vault,
        tenant_id="ten_a",
        username="bo",
        password=PASSWORDS["bo"],
        scopes={"patient.read"},
        mfa_methods=["totp", "sms", "email"],
        email="bo@example.org",
        phone="555-010-4321",
        totp_seed=SEED,
        now=START,
    )
    clock = Clock(START)
    people = SqlPeople(engine)
    sessions = Sessions(people, totp_source(engine, vault), clock=clock)
    app = FastAPI()
    problems.install(app)
    install_sign_in_problems(app)
    app.include_router(router(sessions))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield Api(client, sessions, people, clock, db)
    await engine.dispose()


async def _post(api: Api, body: dict[str, Any]) -> httpx.Response:
    return await api.client.post("/authenticate", json=body)


async def _challenge(api: Api) -> str:
    reply = await _post(api, {"tenant": "ten_a", "username": "bo", "password": PASSWORDS["bo"]})
    assert reply.status_code == 200
    return str(reply.json()["challenge_id"])


async def _code_by(api: Api, method: str) -> tuple[str, str]:
    challenge = await _challenge(api)
    reply = await _post(api, {"challenge_id": challenge, "method": method})
    assert reply.status_code == 200
    [note] = await api.people.notifications("ten_a")
    assert note.channel == method
    return challenge, note.body.removeprefix("Your carebridge code is ")


def _is_problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    return body


async def test_a_password_only_user_gets_a_bearer_token(api: Api) -> None:
    reply = await _post(api, {"tenant": "ten_a", "username": "ana", "password": PASSWORDS["ana"]})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"status", "token", "token_type", "expires_at", "tenant", "scopes"}
    assert (body["status"], body["token_type"], body["tenant"]) == (
        "authenticated",
        "Bearer",
        "ten_a",
    )
    assert body["scopes"] == ["appointment.read", "patient.read"]
    assert datetime.fromisoformat(body["expires_at"]) == START + timedelta(hours=12)
    principal = await api.sessions.principal(body["token"])
    assert principal is not None
    assert (principal.tenant_id, principal.scopes) == (
        "ten_a",
        {"patient.read", "appointment.read"},
    )


async def test_the_totp_flow_needs_no_delivery(api: Api) -> None:
    reply = await _post(api, {"tenant": "ten_a", "username": "bo", "password": PASSWORDS["bo"]})
    body = reply.json()
    assert body["status"] == "mfa_required"
    assert body["methods"] == ["totp", "sms", "email"]
    assert datetime.fromisoformat(body["expires_at"]) == START + timedelta(minutes=5)
    chosen = await _post(api, {"challenge_id": body["challenge_id"], "method": "totp"})
    assert chosen.status_code == 200
    assert chosen.json() == {
        "status": "code_required",
        "challenge_id": body["challenge_id"],
        "method": "totp",
    }
    code = pyotp.TOTP(SEED).at(START)
    done = await _post(api, {"challenge_id": body["challenge_id"], "code": code})
    assert done.status_code == 200
    assert done.json()["status"] == "authenticated"
    assert done.json()["scopes"] == ["patient.read"]


@pytest.mark.parametrize(
    ("method", "masked", "destination"),
    [("sms", "***-***-4321", "555-010-4321"), ("email", "b***@example.org", "bo@example.org")],
)
async def test_texted_and_emailed_codes_sign_in(
    api: Api, method: str, masked: str, destination: str
) -> None:
    challenge = await _challenge(api)
    chosen = await _post(api, {"challenge_id": challenge, "method": method})
    assert chosen.json() == {
        "status": "code_sent",
        "challenge_id": challenge,
        "method": method,
        "destination": masked,
    }
    [note] = await api.people.notifications("ten_a")
    assert (note.channel, note.destination) == (method, destination)
    code = note.body.removeprefix("Your carebridge code is ")
    assert len(code) == 6
    assert code.isdigit()
    done = await _post(api, {"challenge_id": challenge, "code": code})
    assert done.status_code == 200
    token = done.json()["token"]
    assert await api.sessions.principal(token) is not None


async def test_a_wrong_password_is_a_401_problem(api: Api) -> None:
    wrong = await _post(api, {"tenant": "ten_a", "username": "ana", "password": "nope"})
    unknown = await _post(api, {"tenant": "ten_a", "username": "zed", "password": "nope"})
    body = _is_problem(wrong, 401)
    assert body["detail"] == _is_problem(unknown, 401)["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_five_wrong_passwords_lock_the_user_with_retry_after(api: Api) -> None:
    for _ in range(4):
        _is_problem(await _post(api, {"tenant": "ten_a", "username": "ana", "password": "x"}), 401)
    locked = await _post(api, {"tenant": "ten_a", "username": "ana", "password": "x"})
    _is_problem(locked, 423)
    assert locked.headers["retry-after"] == "900"
    right = await _post(api, {"tenant": "ten_a", "username": "ana", "password": PASSWORDS["ana"]})
    _is_problem(right, 423)
    api.clock.now = START + timedelta(minutes=15)
    right = await _post(api, {"tenant": "ten_a", "username": "ana", "password": PASSWORDS["ana"]})
    assert right.status_code == 200


async def test_a_wrong_code_is_a_401_problem(api: Api) -> None:
    challenge, code = await _code_by(api, "sms")
    wrong = "000000" if code != "000000" else "111111"
    _is_problem(await _post(api, {"challenge_id": challenge, "code": wrong}), 401)
    assert (await _post(api, {"challenge_id": challenge, "code": code})).status_code == 200


async def test_five_wrong_codes_exhaust_the_challenge(api: Api) -> None:
    challenge, code = await _code_by(api, "email")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        _is_problem(await _post(api, {"challenge_id": challenge, "code": wrong}), 401)
    _is_problem(await _post(api, {"challenge_id": challenge, "code": code}), 401)


async def test_an_expired_challenge_is_a_401_problem(api: Api) -> None:
    challenge, code = await _code_by(api, "sms")
    api.clock.now = START + timedelta(minutes=5)
    _is_problem(await _post(api, {"challenge_id": challenge, "code": code}), 401)


async def test_a_method_not_enrolled_is_a_422_problem(api: Api) -> None:
    reply = await _post(api, {"tenant": "ten_a", "username": "ana", "password": PASSWORDS["ana"]})
    assert reply.json()["status"] == "authenticated"
    challenge = await _challenge(api)
    _is_problem(await _post(api, {"challenge_id": challenge, "code": "123456"}), 422)


@pytest.mark.parametrize(
    "body",
    [
        {"tenant": "ten_a", "username": "ana", "password": "hunter2-Secret", "code": "123456"},
        {"challenge_id": "chl_x", "method": "sms", "code": "123456"},
        {"challenge_id": "chl_x", "method": "fax"},
        {"challenge_id": "chl_x", "code": "12345"},
        {"challenge_id": "chl_x", "code": "123456", "remember": True},
        {"tenant": "ten_a", "username": "ana"},
        {"challenge_id": "chl_x"},
        {"hello": "world"},
        {},
        [],
    ],
)
async def test_mixed_unknown_or_malformed_bodies_are_422_problems(api: Api, body: Any) -> None:
    reply = await api.client.post("/authenticate", json=body)
    problem = _is_problem(reply, 422)
    assert problem["errors"]
    assert "hunter2" not in reply.text


async def test_a_session_token_has_a_principal_until_it_expires(api: Api) -> None:
    reply = await _post(api, {"tenant": "ten_a", "username": "ana", "password": PASSWORDS["ana"]})
    token = reply.json()["token"]
    principal = await api.sessions.principal(token)
    assert principal is not None
    assert principal.tenant_id == "ten_a"
    api.clock.now = START + timedelta(hours=12)
    assert await api.sessions.principal(token) is None


async def test_passwords_and_totp_seeds_never_reach_the_database_file(api: Api) -> None:
    for username, password in PASSWORDS.items():
        await _post(api, {"tenant": "ten_a", "username": username, "password": password})
    challenge = await _challenge(api)
    await _post(api, {"challenge_id": challenge, "method": "totp"})
    await _post(api, {"challenge_id": challenge, "code": pyotp.TOTP(SEED).at(START)})
    files = sorted(api.db.parent.glob(api.db.name + "*"))  # the database and its WAL
    assert api.db in files
    stored = b"".join(path.read_bytes() for path in files)
    assert b"scrypt$" in stored  # the bytes are the real store
    for secret in (*PASSWORDS.values(), SEED):
        assert secret.encode() not in stored
        assert secret.lower().encode() not in stored.lower()


async def test_the_openapi_document_shows_the_three_steps(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    operation = spec["paths"]["/authenticate"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"password", "method", "code"}
    assert {"401", "422", "423"} <= set(operation["responses"])
