"""``carebridge users``: the tenant's people who sign in with ``POST /authenticate``.

The store is ``--database`` or ``CAREBRIDGE_DATABASE_URL`` (default ``sqlite:///carebridge.db``);
the vault key that seals TOTP seeds comes from ``CAREBRIDGE_VAULT_KEY`` or
``CAREBRIDGE_VAULT_KEY_FILE``. A generated password and a TOTP enrolment URI are printed once and
stored nowhere readable. Bad input prints one ``error:`` line and exits 2. Each command parses,
calls one use case of :mod:`carebridge.services.admin` as the shell's operator, and prints.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from carebridge.cli.common import fail as _fail
from carebridge.cli.common import ring as _ring
from carebridge.cli.common import run as _run
from carebridge.errors import InvalidScopes
from carebridge.services.admin import SHELL, UserSpec
from carebridge.services.keys import parse_scopes
from carebridge.wiring import admin

users_app = typer.Typer(no_args_is_help=True, help="People of a tenant who sign in.")

Database = Annotated[
    str | None,
    typer.Option("--database", "--db", help="Store URL (default: CAREBRIDGE_DATABASE_URL)."),
]
Tenant = Annotated[str, typer.Option(help="The tenant the user belongs to.")]
Username = Annotated[str, typer.Option(help="The name the user signs in with.")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from stdin (else one is made)."),
]


def _list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _stdin_password(wanted: bool) -> str | None:
    """The password on stdin when ``--password-stdin`` is given, else None (one is made)."""
    if not wanted:
        return None
    password = typer.get_text_stream("stdin").read().rstrip("\r\n")
    if not password:
        raise _fail("--password-stdin read an empty password")
    return password


@users_app.command("add")
def users_add(
    tenant: Tenant,
    username: Username,
    scopes: Annotated[
        str, typer.Option(help="Comma-separated, e.g. patient.read,appointment.write.")
    ],
    mfa: Annotated[
        str | None, typer.Option(help="Second factors, comma-separated: totp,sms,email.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Where e-mailed codes go.")] = None,
    phone: Annotated[str | None, typer.Option(help="Where texted codes go.")] = None,
    password_stdin: PasswordStdin = False,
    database: Database = None,
) -> None:
    """Add a user; a generated password and the TOTP enrolment URI are shown once."""
    try:
        granted = parse_scopes(scopes)
    except InvalidScopes as err:
        raise _fail(str(err)) from None
    methods = tuple(_list(mfa))
    password = _stdin_password(password_stdin)
    spec = UserSpec(tenant, username, sorted(granted), methods, email, phone, password)
    ring = _ring()
    added = _run(
        lambda: admin.using(admin.database_url(database), ring, lambda a: a.add_user(SHELL, spec))
    )
    factors = ",".join(added.mfa_methods) or "none"
    typer.echo(
        f"user {added.id} added to {tenant} (scopes {','.join(added.scopes)}; mfa {factors})"
    )
    if added.password is not None:
        typer.echo(f"password: {added.password}  (shown once)")
    if added.totp_uri is not None:
        typer.echo(f"totp: {added.totp_uri}  (shown once)")


@users_app.command("list")
def users_list(
    tenant: Tenant,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    database: Database = None,
) -> None:
    """A tenant's users: id, username, scopes and second factors (no secrets, no contacts)."""
    found = _run(
        lambda: admin.using(
            admin.database_url(database), None, lambda a: a.list_users(SHELL, tenant)
        )
    )
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": u.id,
                        "username": u.username,
                        "scopes": list(u.scopes),
                        "mfa": list(u.mfa_methods),
                        "disabled": u.disabled,
                    }
                    for u in found
                ]
            )
        )
        return
    for u in found:
        factors = ",".join(u.mfa_methods) or "none"
        typer.echo(f"{u.id}\t{u.username}\tmfa {factors}\t{','.join(u.scopes)}")


@users_app.command("remove")
def users_remove(tenant: Tenant, username: Username, database: Database = None) -> None:
    """Remove a user, ending its sessions and forgetting its TOTP seed."""
    user_id = _run(
        lambda: admin.using(
            admin.database_url(database), None, lambda a: a.remove_user(SHELL, tenant, username)
        )
    )
    typer.echo(f"user {user_id} removed from {tenant}")


@users_app.command("reset")
def users_reset(
    tenant: Tenant,
    username: Username,
    password_stdin: PasswordStdin = False,
    database: Database = None,
) -> None:
    """Give a user a new password, lift its lockout and end its sessions; a generated
    password is shown once."""
    password = _stdin_password(password_stdin)
    done = _run(
        lambda: admin.using(
            admin.database_url(database),
            None,
            lambda a: a.reset_user(SHELL, tenant, username, password=password),
        )
    )
    typer.echo(f"user {done.user_id} of {tenant} reset: lockout lifted, sessions ended")
    if done.password is not None:
        typer.echo(f"password: {done.password}  (shown once)")
