"""The MCP server's use cases over one deployment: the reads and writes the API serves, the
agents' composite reads, confirmation tokens in the store, per-principal limits, and how a
bearer token (an API key or a session token) becomes a principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from carebridge.ports.records import AuditSink
from carebridge.services.agents import AgentLimits, AgentReads, Confirmations, Limiter
from carebridge.services.events import Events
from carebridge.services.reads import Reads
from carebridge.services.records import Principal, Unauthorized, authenticate, bearer
from carebridge.services.writes import Writes
from carebridge.store.confirmations import SqlConfirmations
from carebridge.wiring.api import Deployment


@dataclass
class AgentServices:
    """Everything the MCP server calls (one per process: the limits are counted here)."""

    deployment: Deployment
    reads: Reads
    writes: Writes
    agent: AgentReads
    events: Events
    confirmations: Confirmations
    limiter: Limiter
    audit: AuditSink
    clock: Callable[[], datetime]

    async def principal(self, authorization: str | None) -> Principal:
        """The principal of a bearer credential: a session token (``cbs_``) or an API key.

        Raises:
            Unauthorized: no credential, or not a valid one.
        """
        token = bearer(authorization)
        if token.startswith("cbs_"):
            found = await self.deployment.session_principal(token)
            if found is None:
                raise Unauthorized("the session token is not valid or has expired")
            return found
        return await authenticate(self.deployment.keys, f"Bearer {token}")


def agent_services(deployment: Deployment, limits: AgentLimits | None = None) -> AgentServices:
    """The MCP server's use cases over ``deployment`` (default limits unless given)."""
    reads = deployment.live
    clock = deployment.clock
    return AgentServices(
        deployment=deployment,
        reads=reads,
        writes=Writes(reads),
        agent=AgentReads(reads),
        events=Events(deployment.events, reads.audit, clock),
        confirmations=Confirmations(SqlConfirmations(deployment.engine), clock),
        limiter=Limiter(limits or AgentLimits(), clock),
        audit=reads.audit,
        clock=clock,
    )
