"""``carebridge users``: the tenant's people who sign in with ``POST /authenticate``.

The store is ``--database`` or ``CAREBRIDGE_DATABASE_URL`` (default ``sqlite:///carebridge.db``);
the vault key that seals TOTP seeds comes from ``CAREBRIDGE_VAULT_KEY`` or
``CAREBRIDGE_VAULT_KEY_FILE``. A generated password and a TOTP enrolment URI are printed once and
stored nowhere readable. Bad input prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
import pyotp
import typer

from carebridge.cli.common import fail as _fail
from carebridge.cli.common import ring as _ring
from carebridge.cli.common import run as _run
from carebridge.services.keys import InvalidScopes, parse_scopes
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.people import add_user
from carebridge.store.vault import Vault
from carebridge.wiring.admin import database_url

users_app = typer.Typer(no_args_is_help=True, help="People of a tenant who sign in.")


def _list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


@users_app.command("add")
def users_add(
    tenant: Annotated[str, typer.Option(help="The tenant the user belongs to.")],
    username: Annotated[str, typer.Option(help="The name the user signs in with.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated, e.g. patient.read,appointment.write.")
    ],
    mfa: Annotated[
        str | None, typer.Option(help="Second factors, comma-separated: totp,sms,email.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Where e-mailed codes go.")] = None,
    phone: Annotated[str | None, typer.Option(help="Where texted codes go.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin (else one is made)."),
    ] = False,
    database: Annotated[
        str | None,
        typer.Option("--database", "--db", help="Store URL (default: CAREBRIDGE_DATABASE_URL)."),
    ] = None,
) -> None:
    """Add a user; a generated password and the TOTP enrolment URI are shown once."""
    try:
        granted = parse_scopes(scopes)
    except InvalidScopes as err:
        raise _fail(str(err)) from None
    methods = _list(mfa)
    if password_stdin:
        password = typer.get_text_stream("stdin").read().rstrip("\r\n")
        if not password:
            raise _fail("--password-stdin read an empty password")
    else:
        password = secrets.token_urlsafe(18)
    seed = pyotp.random_base32() if "totp" in methods else None
    vault = Vault(_ring())
    url = database_url(database)

    async def add() -> str:
        await anyio.to_thread.run_sync(migrate.upgrade, url)
        engine = create_engine(url)
        try:
            return await add_user(
                engine,
                vault,
                tenant_id=tenant,
                username=username,
                password=password,
                scopes=granted,
                mfa_methods=methods,
                email=email,
                phone=phone,
                totp_seed=seed,
                now=datetime.now(UTC).replace(microsecond=0),
            )
        finally:
            await engine.dispose()

    user_id = _run(add)
    factors = ",".join(methods) or "none"
    typer.echo(
        f"user {user_id} added to {tenant} (scopes {','.join(sorted(granted))}; mfa {factors})"
    )
    if not password_stdin:
        typer.echo(f"password: {password}  (shown once)")
    if seed is not None:
        uri = pyotp.TOTP(seed).provisioning_uri(name=username, issuer_name=f"carebridge {tenant}")
        typer.echo(f"totp: {uri}  (shown once)")
