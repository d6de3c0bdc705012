"""``carebridge tenants / keys / vault / audit``: the happy paths, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from carebridge.cli.main import app
from carebridge.services.keys import verify
from carebridge.store import tenants as repo
from carebridge.store.engine import create_engine
from carebridge.store.vault import KEY_BYTES, KeyRing


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CAREBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CAREBRIDGE_VAULT_KEY": KeyRing({"k1": bytes(KEY_BYTES)}, "k1").to_text(),
    }


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


SETTINGS = (
    '{"base_url": "http://127.0.0.1:8701", "token_url": "http://127.0.0.1:8701/oauth2/access_token",'
    ' "portal_api": "http://127.0.0.1:8701/portal/api"}'
)


ADD = [
    "tenants",
    "add",
    "--id",
    "ten_maple",
    "--name",
    "Maple Grove",
    "--settings",
    SETTINGS,
    "--secret",
    "v2.client_id=ci-1",
    "--secret",
    "v2.client_secret=cs-1",
    "--secret",
    "v2.refresh_token=rt-1",
    "--secret",
    "portal.username=fd",
    "--secret",
    "portal.password=pw-1",
]


def _add(env: dict[str, str]) -> tuple[int, str]:
    return _run(ADD, env)


def test_onboard_then_create_a_key_shown_once(env: dict[str, str]) -> None:
    code, out = _add(env)
    assert code == 0
    assert "5 sealed secret(s)" in out
    assert "cs-1" not in out
    code, out = _run(
        [
            "keys",
            "create",
            "--tenant",
            "ten_maple",
            "--scopes",
            "patient.read,appointment.write",
            "--json",
        ],
        env,
    )
    assert code == 0
    shown = json.loads(out)
    assert shown["scopes"] == ["appointment.write", "patient.read"]

    async def stored() -> repo.StoredKey | None:
        engine = create_engine(env["CAREBRIDGE_DATABASE_URL"])
        try:
            return await repo.key_by_prefix(engine, shown["key"].split("_")[1])
        finally:
            await engine.dispose()

    key = anyio.run(stored)
    assert key is not None
    assert key.tenant_id == "ten_maple"
    assert verify(shown["key"], key.secret_hash)
    assert shown["key"] not in Path(
        env["CAREBRIDGE_DATABASE_URL"].removeprefix("sqlite:///")
    ).read_bytes().decode("latin-1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["keys", "create", "--tenant", "ten_maple", "--scopes", "patient.delete"],
            "unknown scopes: patient.delete",
        ),
        (["keys", "create", "--tenant", "ten_nobody", "--scopes", "patient.read"], "no tenant"),
        (["tenants", "add", "--id", "t", "--name", "n", "--settings", "[1"], "not valid JSON"),
        (["tenants", "add", "--id", "t", "--name", "n", "--secret", "novalue"], "SLOT=VALUE"),
        (ADD, "already exists"),
        (["tenants", "add", "--id", "ten_x", "--name", "n"], "needs settings.base_url"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    env: dict[str, str], args: list[str], message: str
) -> None:
    assert _add(env)[0] == 0
    code, out = _run(args, env)
    assert code == 2
    assert message in out
    assert out.count("error:") == 1


def test_missing_vault_key_is_refused(env: dict[str, str]) -> None:
    code, out = _run(
        ["tenants", "add", "--id", "t", "--name", "n"], {**env, "CAREBRIDGE_VAULT_KEY": ""}
    )
    assert code == 2
    assert "CAREBRIDGE_VAULT_KEY" in out


def test_vault_rotation_from_the_command_line(env: dict[str, str]) -> None:
    assert _add(env)[0] == 0
    new = KeyRing.parse(env["CAREBRIDGE_VAULT_KEY"]).with_primary("k2", bytes(range(KEY_BYTES)))
    code, out = _run(["vault", "rotate"], {**env, "CAREBRIDGE_VAULT_KEY": new.to_text()})
    assert code == 0
    assert "re-wrapped 5 secret(s) under key k2" in out
    code, out = _run(["vault", "new-key", "--kid", "k9"], env)
    assert code == 0
    assert KeyRing.parse(out.strip()).primary == "k9"


def test_audit_verify_reports_an_intact_empty_chain(env: dict[str, str]) -> None:
    assert _add(env)[0] == 0
    code, out = _run(["audit", "verify", "--tenant", "ten_maple"], env)
    assert code == 0
    assert "intact: 0 entries" in out


def test_tenants_are_listed_and_shown_without_secret_values(env: dict[str, str]) -> None:
    assert _add(env)[0] == 0
    code, out = _run(["tenants", "list", "--json"], env)
    assert code == 0
    assert json.loads(out) == [
        {"id": "ten_maple", "name": "Maple Grove", "upstream": "carecloud", "disabled": False}
    ]
    code, out = _run(["tenants", "show", "--id", "ten_maple"], env)
    assert code == 0
    shown = json.loads(out)
    assert shown["sealed_secrets"] == sorted(
        [
            "v2.client_id",
            "v2.client_secret",
            "v2.refresh_token",
            "portal.username",
            "portal.password",
        ]
    )
    assert shown["settings"] == json.loads(SETTINGS)
    assert not {"ci-1", "cs-1", "rt-1", "pw-1"} & set(out.split('"'))
    code, out = _run(["tenants", "show", "--id", "ten_nobody"], env)
    assert (code, out.count("error:")) == (2, 1)


def test_keys_are_listed_by_prefix_and_revoked(env: dict[str, str]) -> None:
    assert _add(env)[0] == 0
    create = ["keys", "create", "--tenant", "ten_maple", "--scopes", "patient.read", "--json"]
    made = json.loads(_run(create, env)[1])
    code, out = _run(["keys", "list", "--tenant", "ten_maple", "--json"], env)
    assert code == 0
    [listed] = json.loads(out)
    assert (listed["id"], listed["revoked"]) == (made["id"], False)
    assert made["key"].startswith(f"cbk_{listed['prefix']}_")
    assert made["key"] not in out
    revoke = ["keys", "revoke", "--tenant", "ten_maple", "--id", made["id"]]
    assert _run(revoke, env)[0] == 0
    [listed] = json.loads(_run(["keys", "list", "--tenant", "ten_maple", "--json"], env)[1])
    assert listed["revoked"] is True
    code, out = _run(revoke, env)
    assert (code, out.count("error:")) == (2, 1)


def test_users_are_added_listed_reset_and_removed(env: dict[str, str]) -> None:
    assert _add(env)[0] == 0
    add = ["users", "add", "--tenant", "ten_maple", "--username", "frontdesk"]
    code, out = _run([*add, "--scopes", "patient.read", "--mfa", "totp"], env)
    assert code == 0
    assert "password: " in out
    assert "totp: otpauth://totp/" in out
    code, out = _run(["users", "list", "--tenant", "ten_maple", "--json"], env)
    assert code == 0
    [listed] = json.loads(out)
    assert (listed["username"], listed["mfa"], listed["scopes"]) == (
        "frontdesk",
        ["totp"],
        ["patient.read"],
    )
    who = ["--tenant", "ten_maple", "--username", "frontdesk"]
    result = CliRunner().invoke(
        app, ["users", "reset", *who, "--password-stdin"], env=env, input="new-Secret-1\n"
    )
    assert result.exit_code == 0
    assert "password:" not in result.output
    code, out = _run(["users", "reset", *who], env)
    assert (code, "password: " in out) == (0, True)
    assert _run(["users", "remove", *who], env)[0] == 0
    assert json.loads(_run(["users", "list", "--tenant", "ten_maple", "--json"], env)[1]) == []
    code, out = _run(["users", "remove", *who], env)
    assert (code, out.count("error:")) == (2, 1)


def test_a_secret_is_sealed_from_stdin_and_never_printed(env: dict[str, str]) -> None:
    assert _add(env)[0] == 0
    seal = ["vault", "seal", "--tenant", "ten_maple", "--slot", "portal.password"]
    result = CliRunner().invoke(app, seal, env=env, input="pw-2\n")
    assert result.exit_code == 0
    assert "sealed portal.password of ten_maple under key k1" in result.output
    assert "pw-2" not in result.output
    result = CliRunner().invoke(app, seal, env=env, input="")
    assert (result.exit_code, result.output.count("error:")) == (2, 1)
    other = ["vault", "seal", "--tenant", "ten_nobody", "--slot", "portal.password"]
    result = CliRunner().invoke(app, other, env=env, input="pw-2\n")
    assert (result.exit_code, result.output.count("error:")) == (2, 1)
