"""One process of carebridge signing in to an emulated tenant's portal, for the multi-process
MFA tests (``test_mfa_steps.py``): ``python signin_process.py <sandbox URL> <store URL>``.

The connector is wired as a deployment wires it (``wiring.carecloud.open_tenant`` with the
store's MFA ledger). Its clock is the emulated tenant's clock, read over the control plane, and
waiting for the next TOTP step moves that clock forward, so the processes and the tenant agree
on time and nothing sleeps. Prints one JSON line: ``{"ok": true}`` or the error's type and code.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

import httpx

from carebridge.connectors.carecloud.auth import SignInRefused
from carebridge.errors import CarebridgeError
from carebridge.store.engine import create_engine
from carebridge.store.mfa_steps import SqlMfaSteps
from carebridge.wiring.carecloud import from_sandbox, open_tenant


async def main(base_url: str, store_url: str) -> dict[str, object]:
    control = httpx.Client(base_url=base_url, timeout=30)

    def clock() -> datetime:
        return datetime.fromisoformat(control.get("/_sandbox/clock").json()["now"])

    async def sleep(seconds: float) -> None:
        del seconds  # the control plane moves by whole minutes: past the next step
        control.post("/_sandbox/clock/advance", json={"minutes": 1}).raise_for_status()

    settings, secrets = from_sandbox(control.get("/_sandbox/credentials").json())
    engine = create_engine(store_url)
    tenant = open_tenant(
        "ten_signin",
        settings,
        secrets,
        clock=clock,
        mfa_steps=SqlMfaSteps(engine),
        sleep=sleep,
    )
    try:
        portal = tenant.connection.portal
        assert portal is not None
        response = await portal.request("GET", f"{settings['portal_api']}/session")
        return {"ok": response.status_code == 200}
    except SignInRefused as err:
        return {"ok": False, "error": type(err).__name__, "code": err.code}
    except CarebridgeError as err:
        return {"ok": False, "error": type(err).__name__}
    finally:
        await tenant.connection.aclose()
        await engine.dispose()
        control.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
