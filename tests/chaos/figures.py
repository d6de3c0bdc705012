"""What a chaos scenario compared and found (:class:`Figures`), and the columns of the run's
closing table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COLUMNS = (
    "runs",
    "seeds",
    "compared",
    "lost",
    "duplicated",
    "wrong",
    "delivered",
    "duplicates",
    "stuck",
)
"""``compared``: records checked against the ground truth; ``lost``, ``duplicated`` and
``wrong``: records missing, extra (or repeated), or different from a fault-free reference;
``delivered``: events that reached a receiver; ``duplicates``: events that made a second event,
or reached a receiver under a second ``webhook-id``; ``stuck``: jobs or deliveries that never
finished."""


@dataclass
class Figures:
    """What one scenario run compared and found."""

    scenario: str
    seeds: list[int] = field(default_factory=list)
    runs: int = 0
    compared: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    delivered: int = 0
    duplicates: int = 0
    stuck: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def clean(self) -> bool:
        """Nothing lost, duplicated, wrong or stuck."""
        return not (self.lost or self.duplicated or self.wrong or self.duplicates or self.stuck)
