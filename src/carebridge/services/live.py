"""The read and write use cases under their earlier names.

The reads live in :mod:`carebridge.services.reads` (``Live`` is :class:`~.reads.Reads`), the
writes in :mod:`carebridge.services.writes`; this module re-exports what callers import.
"""

from __future__ import annotations

from carebridge.errors import BadRequest as BadRequest
from carebridge.errors import KeyInFlight as KeyInFlight
from carebridge.errors import KeyReused as KeyReused
from carebridge.errors import NotConfigured as NotConfigured
from carebridge.services.reads import LAG as LAG
from carebridge.services.reads import PHI_KINDS as PHI_KINDS
from carebridge.services.reads import SOURCES as SOURCES
from carebridge.services.reads import Backend as Backend
from carebridge.services.reads import Fetch as Fetch
from carebridge.services.reads import Found as Found
from carebridge.services.reads import Freshness as Freshness
from carebridge.services.reads import ListQuery as ListQuery
from carebridge.services.reads import Reads
from carebridge.services.reads import Served as Served
from carebridge.services.reads import Source as Source
from carebridge.services.reads import Upstreams as Upstreams
from carebridge.services.reads import read_scope as read_scope
from carebridge.services.writes import KEY_PATTERN as KEY_PATTERN
from carebridge.services.writes import WriteOutcome as WriteOutcome
from carebridge.services.writes import Writes as Writes

Live = Reads
"""The read use cases (and, through :class:`Writes` over them, the writes)."""
