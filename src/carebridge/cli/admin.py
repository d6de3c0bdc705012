"""``carebridge tenants``, ``keys``, ``vault`` and ``audit``: administration of the store.

The store is ``--db`` or ``CAREBRIDGE_DATABASE_URL`` (default ``sqlite:///carebridge.db``); the
vault key comes from ``CAREBRIDGE_VAULT_KEY`` or ``CAREBRIDGE_VAULT_KEY_FILE``. Bad input prints
one ``error:`` line and exits 2.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from carebridge.cli.common import fail as _fail
from carebridge.cli.common import ring as _ring
from carebridge.cli.common import run as _run
from carebridge.store.vault import KeyRing
from carebridge.wiring import admin

tenants_app = typer.Typer(no_args_is_help=True, help="Onboard upstream tenants.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys of a tenant.")
vault_app = typer.Typer(no_args_is_help=True, help="The credential vault.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log of PHI access.")

Db = Annotated[
    str | None, typer.Option("--db", help="Store URL (default: CAREBRIDGE_DATABASE_URL).")
]


@tenants_app.command("add")
def tenants_add(
    tenant_id: Annotated[str, typer.Option("--id", help="The tenant's id, e.g. ten_maple.")],
    name: Annotated[str, typer.Option(help="A display name.")],
    settings: Annotated[
        str, typer.Option(help="Settings as a JSON object (URLs, practice).")
    ] = "{}",
    secret: Annotated[
        list[str] | None,
        typer.Option(help="SLOT=VALUE, repeatable (v2.client_secret, portal.password ...)."),
    ] = None,
    upstream: Annotated[str, typer.Option(help="The upstream kind.")] = "carecloud",
    db: Db = None,
) -> None:
    """Onboard a tenant; its secrets are sealed by the vault before they are stored."""
    try:
        parsed: Any = json.loads(settings)
    except json.JSONDecodeError:
        raise _fail("--settings is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _fail("--settings must be a JSON object")
    sealed: dict[str, str] = {}
    for item in secret or []:
        slot, sep, value = item.partition("=")
        if not sep or not slot or not value:
            raise _fail("--secret takes SLOT=VALUE")
        sealed[slot] = value
    ring = _ring()
    _run(
        lambda: admin.onboard(
            admin.database_url(db),
            ring,
            tenant_id=tenant_id,
            name=name,
            upstream=upstream,
            settings=parsed,
            secrets=sealed,
        )
    )
    typer.echo(f"tenant {tenant_id} added with {len(sealed)} sealed secret(s)")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated, e.g. patient.read,appointment.write.")
    ],
    label: Annotated[str, typer.Option(help="A note to recognize the key by.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: Db = None,
) -> None:
    """Create an API key. It is shown once; the store keeps only its hash."""
    key = _run(
        lambda: admin.create_key(
            admin.database_url(db), tenant_id=tenant, scopes=scopes, label=label
        )
    )
    if as_json:
        typer.echo(
            json.dumps(
                {"id": key.id, "tenant": key.tenant_id, "key": key.key, "scopes": list(key.scopes)}
            )
        )
    else:
        typer.echo(
            f"{key.key}\n(id {key.id}, tenant {key.tenant_id}, scopes {','.join(key.scopes)}; shown once)"
        )


@vault_app.command("rotate")
def vault_rotate(db: Db = None) -> None:
    """Re-wrap every secret under the primary key of CAREBRIDGE_VAULT_KEY (list the new key
    first, keep the old one after it until this has run)."""
    ring = _ring()
    changed = _run(lambda: admin.rotate_vault(admin.database_url(db), ring))
    typer.echo(f"re-wrapped {changed} secret(s) under key {ring.primary}")


@vault_app.command("new-key")
def vault_new_key(kid: Annotated[str, typer.Option(help="The new key's id.")] = "k1") -> None:
    """Print a fresh key in CAREBRIDGE_VAULT_KEY form (keep it secret, keep it safe)."""
    typer.echo(KeyRing.generate(kid).to_text())


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[str, typer.Option(help="The tenant whose chain to check.")], db: Db = None
) -> None:
    """Check a tenant's audit chain under its key (CAREBRIDGE_VAULT_KEY); exits 1 when an entry
    was edited, removed or reordered, or the newest entries or the checkpoint are gone."""
    ring = _ring()
    result = _run(lambda: admin.verify_audit(admin.database_url(db), ring, tenant))
    if result.intact:
        typer.echo(f"audit chain of {tenant} intact: {result.entries} entries")
        return
    where = "" if result.first_broken is None else f" at seq {result.first_broken}"
    typer.echo(f"audit chain of {tenant} BROKEN{where}: {result.problem}", err=True)
    raise typer.Exit(code=1)
