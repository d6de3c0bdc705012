"""The store's crosswalk: links kept in batches, one statement a page, looked up both ways, per
tenant, on SQLite and on PostgreSQL; the in-memory crosswalk answers the same."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.crosswalk import Crosswalk, Link, MemoryCrosswalk
from carebridge.store.crosswalk import CHUNK, SqlCrosswalk
from carebridge.store.engine import create_engine

pytestmark = pytest.mark.anyio


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` sends while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]).split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def person(n: int) -> list[Link]:
    """One person's ids on four surfaces (synthetic)."""
    pid = f"pat_{n:04d}"
    return [
        Link("patient", "chart_number", f"CH{n:04d}", pid),
        Link("patient", "v2", f"guid-{n:04d}", pid),
        Link("patient", "rcm_account", f"RCM{n:04d}", pid),
        Link("patient", "fhir", f"fhir-{n:04d}", pid),
    ]


async def both_ways(walk: Crosswalk) -> None:
    await walk.remember("ten_a", [link for n in range(3) for link in person(n)])
    await walk.remember("ten_a", [Link("appointment", "v2", "apt-guid-1", "apt_1")])
    assert await walk.upstream_id("ten_a", "patient", "v2", "pat_0001") == "guid-0001"
    assert await walk.entity_id("ten_a", "patient", "chart_number", "CH0002") == "pat_0002"
    assert await walk.upstream_id("ten_a", "appointment", "v2", "apt_1") == "apt-guid-1"
    assert await walk.upstream_id("ten_a", "patient", "v2", "pat_9999") is None
    assert await walk.entity_id("ten_a", "patient", "v2", "nope") is None
    assert await walk.upstream_ids("ten_a", "patient", "rcm_account", ["pat_0000", "pat_0002"]) == {
        "pat_0000": "RCM0000",
        "pat_0002": "RCM0002",
    }
    assert sorted(
        (x.surface, x.upstream_id) for x in await walk.links_of("ten_a", "patient", ["pat_0001"])
    ) == [
        ("chart_number", "CH0001"),
        ("fhir", "fhir-0001"),
        ("rcm_account", "RCM0001"),
        ("v2", "guid-0001"),
    ]
    # another tenant sees none of it
    assert await walk.upstream_id("ten_b", "patient", "v2", "pat_0001") is None
    assert await walk.links_of("ten_b", "patient", ["pat_0001"]) == []
    # a kind's ids are its own
    assert await walk.upstream_id("ten_a", "encounter", "v2", "pat_0001") is None
    # remembering again changes nothing; a re-keyed upstream id moves to its new entity
    await walk.remember("ten_a", person(1))
    await walk.remember("ten_a", [Link("patient", "v2", "guid-0001", "pat_0002")])
    assert await walk.entity_id("ten_a", "patient", "v2", "guid-0001") == "pat_0002"
    # an entity with two ids on a surface answers the smallest, every time
    assert await walk.upstream_id("ten_a", "patient", "v2", "pat_0002") == "guid-0001"


async def test_links_are_found_both_ways_per_tenant_and_kind(seeded: AsyncEngine) -> None:
    await both_ways(SqlCrosswalk(seeded))


async def test_the_memory_crosswalk_answers_as_the_store_does() -> None:
    await both_ways(MemoryCrosswalk())


async def test_a_page_of_links_is_one_statement_and_a_long_batch_a_few(
    seeded: AsyncEngine,
) -> None:
    walk = SqlCrosswalk(seeded)
    page = [link for n in range(25) for link in person(n)]  # 100 links: a page of 25 people
    with statements(seeded) as sent:
        await walk.remember("ten_a", page)
    assert sent.count("INSERT") == 1
    many = [Link("charge", "portal", str(n), f"chg_{n}") for n in range(CHUNK * 2 + 10)]
    with statements(seeded) as sent:
        await walk.remember("ten_a", many)
        found = await walk.upstream_ids(
            "ten_a", "charge", "portal", [f"chg_{n}" for n in range(1010)]
        )
    assert sent.count("INSERT") == 3
    assert sent.count("SELECT") == 3
    assert found == {f"chg_{n}": str(n) for n in range(1010)}
    with statements(seeded) as sent:
        await walk.remember("ten_a", [])
    assert sent == []


async def test_a_second_engine_on_the_same_store_sees_the_links(seeded: AsyncEngine) -> None:
    await SqlCrosswalk(seeded).remember("ten_a", person(7))
    other = create_engine(seeded.url.render_as_string(hide_password=False))
    try:
        assert await SqlCrosswalk(other).entity_id("ten_a", "patient", "fhir", "fhir-0007") == (
            "pat_0007"
        )
    finally:
        await other.dispose()


def test_a_link_names_a_kind_of_the_registry_and_a_known_surface() -> None:
    with pytest.raises(ValueError, match="kind"):
        Link("gizmo", "v2", "1", "giz_1")
    with pytest.raises(ValueError, match="surface"):
        Link("patient", "fax", "1", "pat_1")
