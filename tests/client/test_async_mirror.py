"""The async client is the sync client with ``async``/``await``: ``_async.py`` is exactly what
:func:`unasync` makes of ``_sync.py``, so the two never drift apart (edit ``_sync.py``, then
regenerate: ``python -m tests.client.test_async_mirror``)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

_SPEC = importlib.util.find_spec("carebridge.client")  # without importing the package
assert _SPEC is not None
assert _SPEC.submodule_search_locations
PACKAGE = Path(next(iter(_SPEC.submodule_search_locations)))
RUNS = ("self._run(", "self._engine.run(", "self._engine.close()")

RENAMES = [
    (r"\bSyncEngine\b", "AsyncEngine"),
    (r"\bPager\b", "AsyncPager"),
    (r"\bCarebridge\b", "AsyncCarebridge"),
    (r"\bhttpx\.Client\b", "httpx.AsyncClient"),
    (r"\bhttpx\.BaseTransport\b", "httpx.AsyncBaseTransport"),
    (r"Callable\[\[float\], None\]", "Callable[[float], Awaitable[None]]"),
    (r"from collections\.abc import Callable,", "from collections.abc import Awaitable, Callable,"),
    (r"The synchronous client", "The asynchronous client"),
    (r"synchronously", "asynchronously"),
    (r"def close\(self\)", "def aclose(self)"),
    (r"self\._engine\.close\(\)", "await self._engine.aclose()"),
    (r"def __enter__", "def __aenter__"),
    (r"def __exit__", "def __aexit__"),
    (r"self\.close\(\)", "await self.aclose()"),
    (r":meth:`close`", ":meth:`aclose`"),
    (r"(?<!await )\bself\._run\(", "await self._run("),
    (r"(?<!await )\bself\._engine\.run\(", "await self._engine.run("),
]


def unasync(source: str) -> str:
    """``_sync.py``'s text made async: a method whose body runs a call (or closes) becomes
    ``async def`` and awaits it; sync names become their async twins."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = re.match(r"^(\s*)def (\w+)\(", line)
        if match and match.group(2) not in ("__init__", "_pager"):
            indent = len(match.group(1))
            end = index + 1
            while end < len(lines) and (
                not lines[end].strip()
                or len(lines[end]) - len(lines[end].lstrip()) > indent
                or lines[end].lstrip().startswith(")")
            ):
                end += 1
            block = "".join(lines[index:end])
            if any(run in block for run in RUNS) or match.group(2) in ("__enter__", "__exit__"):
                line = line.replace("def ", "async def ", 1)
            out.append(line)
            out.extend(lines[index + 1 : end])
            index = end
            continue
        out.append(line)
        index += 1
    text = "".join(out)
    for pattern, replacement in RENAMES:
        text = re.sub(pattern, replacement, text)
    return text


def _ruff(*command: str, source: str) -> str:
    done = subprocess.run(  # noqa: S603 - the project's own formatter
        [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(PACKAGE / "_async.py")],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def formatted(source: str) -> str:
    """``source`` with its imports sorted and formatted as ruff does (the project's settings)."""
    imports_sorted = _ruff("check", "--select", "I", "--fix-only", "--exit-zero", source=source)
    return _ruff("format", source=imports_sorted)


def generated() -> str:
    """What ``_async.py`` must hold."""
    return formatted(unasync((PACKAGE / "_sync.py").read_text(encoding="utf-8")))


def test_the_async_client_is_the_sync_client_with_async_and_await() -> None:
    assert (PACKAGE / "_async.py").read_text(encoding="utf-8") == generated()


def test_every_operation_of_the_sync_client_is_awaited_in_the_async_one() -> None:
    mirrored = (PACKAGE / "_async.py").read_text(encoding="utf-8")
    assert "async def create(" in mirrored
    assert "return await self._run(" in mirrored
    assert re.search(r"(?<!await )self\._run\(", mirrored.replace("def _run(", "")) is None


if __name__ == "__main__":
    (PACKAGE / "_async.py").write_text(generated(), encoding="utf-8")
