"""``carebridge tenants``, ``keys``, ``vault`` and ``audit``: administration of the store.

The store is ``--db`` or ``CAREBRIDGE_DATABASE_URL`` (default ``sqlite:///carebridge.db``); the
vault key comes from ``CAREBRIDGE_VAULT_KEY`` or ``CAREBRIDGE_VAULT_KEY_FILE``. Bad input prints
one ``error:`` line and exits 2. Each command parses, calls one use case of
:mod:`carebridge.services.admin` as the shell's operator, and prints the result.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from carebridge.cli.common import fail as _fail
from carebridge.cli.common import ring as _ring
from carebridge.cli.common import run as _run
from carebridge.services.admin import SHELL, KeySpec, SecretSpec, TenantSpec
from carebridge.wiring import admin

tenants_app = typer.Typer(no_args_is_help=True, help="Onboard upstream tenants.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys of a tenant.")
vault_app = typer.Typer(no_args_is_help=True, help="The credential vault.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log of PHI access.")

Db = Annotated[
    str | None, typer.Option("--db", help="Store URL (default: CAREBRIDGE_DATABASE_URL).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


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
    spec = TenantSpec(tenant_id, name, upstream, parsed, sealed)
    ring = _ring()
    done = _run(lambda: admin.using(admin.database_url(db), ring, lambda a: a.onboard(SHELL, spec)))
    typer.echo(f"tenant {done.id} added with {len(done.sealed_secrets)} sealed secret(s)")


@tenants_app.command("list")
def tenants_list(as_json: Json = False, db: Db = None) -> None:
    """The onboarded tenants: id, upstream and name."""
    found = _run(lambda: admin.using(admin.database_url(db), None, lambda a: a.list_tenants(SHELL)))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"id": t.id, "name": t.name, "upstream": t.upstream, "disabled": t.disabled}
                    for t in found
                ]
            )
        )
        return
    for t in found:
        typer.echo(f"{t.id}\t{t.upstream}\t{t.name}{' (disabled)' if t.disabled else ''}")


@tenants_app.command("show")
def tenants_show(
    tenant_id: Annotated[str, typer.Option("--id", help="The tenant's id.")], db: Db = None
) -> None:
    """One tenant as JSON: its settings and the names (never the values) of its secrets."""
    t = _run(
        lambda: admin.using(admin.database_url(db), None, lambda a: a.show_tenant(SHELL, tenant_id))
    )
    shown = {
        "id": t.id,
        "name": t.name,
        "upstream": t.upstream,
        "settings": dict(t.settings),
        "sealed_secrets": list(t.secret_names),
        "created_at": t.created_at.isoformat(),
        "disabled": t.disabled,
    }
    typer.echo(json.dumps(shown, indent=2))


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated, e.g. patient.read,appointment.write.")
    ],
    label: Annotated[str, typer.Option(help="A note to recognize the key by.")] = "",
    as_json: Json = False,
    db: Db = None,
) -> None:
    """Create an API key. It is shown once; the store keeps only its hash."""
    spec = KeySpec(tenant, scopes, label)
    key = _run(lambda: admin.using(admin.database_url(db), None, lambda a: a.mint_key(SHELL, spec)))
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


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str, typer.Option(help="The tenant whose keys to list.")],
    as_json: Json = False,
    db: Db = None,
) -> None:
    """A tenant's keys: id, prefix, scopes and label (never the key)."""
    found = _run(
        lambda: admin.using(admin.database_url(db), None, lambda a: a.list_keys(SHELL, tenant))
    )
    rows = [
        {
            "id": k.id,
            "prefix": k.prefix,
            "scopes": sorted(k.scopes),
            "label": k.label,
            "created_at": k.created_at.isoformat(),
            "revoked": k.revoked,
        }
        for k in found
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for k in found:
        state = "revoked" if k.revoked else "live"
        typer.echo(f"{k.id}\tcbk_{k.prefix}_…\t{state}\t{','.join(sorted(k.scopes))}\t{k.label}")


@keys_app.command("revoke")
def keys_revoke(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    key_id: Annotated[str, typer.Option("--id", help="The key's id (key_...).")],
    db: Db = None,
) -> None:
    """Revoke a key: it authenticates nothing from now on."""
    _run(
        lambda: admin.using(
            admin.database_url(db), None, lambda a: a.revoke_key(SHELL, tenant, key_id)
        )
    )
    typer.echo(f"key {key_id} of {tenant} revoked")


@vault_app.command("rotate")
def vault_rotate(db: Db = None) -> None:
    """Re-wrap every secret under the primary key of CAREBRIDGE_VAULT_KEY (list the new key
    first, keep the old one after it until this has run)."""
    ring = _ring()
    done = _run(lambda: admin.using(admin.database_url(db), ring, lambda a: a.rotate_vault(SHELL)))
    typer.echo(f"re-wrapped {done.rewrapped} secret(s) under key {done.primary}")


@vault_app.command("seal")
def vault_seal(
    tenant: Annotated[str, typer.Option(help="The tenant the secret belongs to.")],
    slot: Annotated[str, typer.Option(help="The secret's slot, e.g. portal.password.")],
    db: Db = None,
) -> None:
    """Seal one secret of a tenant, read from stdin (it replaces the slot's value)."""
    value = typer.get_text_stream("stdin").read().rstrip("\r\n")
    if not value:
        raise _fail("no secret on stdin")
    ring = _ring()
    spec = SecretSpec(tenant, slot, value)
    _run(lambda: admin.using(admin.database_url(db), ring, lambda a: a.seal_secret(SHELL, spec)))
    typer.echo(f"sealed {slot} of {tenant} under key {ring.primary}")


@vault_app.command("new-key")
def vault_new_key(kid: Annotated[str, typer.Option(help="The new key's id.")] = "k1") -> None:
    """Print a fresh key in CAREBRIDGE_VAULT_KEY form (keep it secret, keep it safe)."""
    typer.echo(admin.new_key_ring(kid).to_text())


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[str, typer.Option(help="The tenant whose chain to check.")], db: Db = None
) -> None:
    """Check a tenant's audit chain under its key (CAREBRIDGE_VAULT_KEY); exits 1 when an entry
    was edited, removed or reordered, or the newest entries or the checkpoint are gone."""
    ring = _ring()
    result = _run(
        lambda: admin.using(admin.database_url(db), ring, lambda a: a.verify_audit(SHELL, tenant))
    )
    if result.intact:
        typer.echo(f"audit chain of {tenant} intact: {result.entries} entries")
        return
    where = "" if result.first_broken is None else f" at seq {result.first_broken}"
    typer.echo(f"audit chain of {tenant} BROKEN{where}: {result.problem}", err=True)
    raise typer.Exit(code=1)
