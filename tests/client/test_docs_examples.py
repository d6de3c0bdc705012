"""Every example in the README and in ``docs/`` runs against a live local stack: ``carebridge
run`` (the emulated tenant and carebridge's API, each in its own process, on free loopback
ports) started in a temporary folder, as a reader runs ``make run`` and pastes the examples.

The examples are read from the markdown itself, so a doc edit that breaks one fails here:
- every ``curl`` line that calls carebridge (``127.0.0.1:8700``) runs in bash from the run's
  folder (the port swapped for the live one) and must answer JSON that is not a problem;
- every ``python`` block runs, the blocks of one page in order in one namespace (a page
  reads top to bottom), with the same port swap;
- every other shell line must be listed in :data:`NOT_RUN` with the reason it cannot run here
  (a new one fails until it is run or listed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PORT = "8700"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)

NOT_RUN = {
    "make run": "starts the stack these tests start themselves (carebridge run)",
    "make test": "the test suite itself",
    "make sandbox &": "the emulated tenant alone: its own API is tested in tests/sandbox",
    "curl -s http://127.0.0.1:8700/_sandbox/credentials": "the emulated tenant alone",
    "TOKEN=$(curl -s -u": "the emulated tenant alone (CareCloud's OAuth), tested in tests/sandbox",
    "-d refresh_token=": "the emulated tenant alone",
    'curl -s -H "Authorization: Bearer $TOKEN"': "the emulated tenant alone (CareCloud's v2)",
    "export CAREBRIDGE_VAULT_KEY": "administration of a real CareCloud tenant",
    "carebridge ": "administration of a real CareCloud tenant (the CLI's own tests run it)",
    "--settings": "administration of a real CareCloud tenant",
    "--secret ": "administration of a real CareCloud tenant",
    "CAREBRIDGE_API_KEY=cbk_... npx @modelcontextprotocol/inspector": (
        "the MCP Inspector comes from npm at run time (tests/mcp lists the tools with the SDK)"
    ),
    "npx @modelcontextprotocol/inspector": "the MCP Inspector comes from npm at run time",
    '--header "Authorization: Bearer cbk_..."': "the MCP Inspector (continued)",
}
"""Shell lines that are not run here, by their start, and why."""


@dataclass(frozen=True)
class Example:
    page: str
    language: str
    text: str


def pages() -> list[Path]:
    """The README and every page under docs/ (the ADRs record decisions, not usage)."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "adr" not in p.parts)
    return [ROOT / "README.md", *docs]


def examples() -> list[Example]:
    found: list[Example] = []
    for page in pages():
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            language = match.group(1).lower()
            found.append(Example(str(page.relative_to(ROOT)), language, match.group(2)))
    return found


def shell_lines(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks left out."""
    joined = text.replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def calls_carebridge(line: str) -> bool:
    """A curl line against carebridge's API (not one the docs say runs elsewhere)."""
    return line.startswith("curl ") and f"127.0.0.1:{PORT}" in line and reason_not_run(line) is None


def reason_not_run(line: str) -> str | None:
    return next(
        (why for start, why in NOT_RUN.items() if line.startswith(start) or start in line), None
    )


@dataclass(frozen=True)
class Stack:
    folder: Path
    port: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``carebridge run`` in a fresh folder, on free ports, until the module ends."""
    folder = tmp_path_factory.mktemp("run")
    port, sandbox_port = free_port(), free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    with open(folder / "run.log", "wb") as log:
        child = subprocess.Popen(  # noqa: S603 - our own CLI
            [
                sys.executable,
                "-m",
                "carebridge",
                "run",
                f"--port={port}",
                f"--sandbox-port={sandbox_port}",
                "--patients=12",
            ],
            cwd=folder,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        while "Ctrl-C" not in (folder / "run.log").read_text(errors="replace"):
            if child.poll() is not None:
                raise AssertionError((folder / "run.log").read_text(errors="replace"))
            wait_for(f"http://127.0.0.1:{port}/health", seconds=5)
        yield Stack(folder, port)
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=60)


def live(text: str, stack: Stack) -> str:
    return text.replace(f"127.0.0.1:{PORT}", f"127.0.0.1:{stack.port}")


def test_every_shell_line_of_the_docs_is_run_or_says_why_not() -> None:
    unclassified = [
        (e.page, line)
        for e in examples()
        if e.language in ("sh", "bash", "shell", "console")
        for line in shell_lines(e.text)
        if not calls_carebridge(line) and reason_not_run(line) is None
    ]
    assert not unclassified


def test_the_docs_hold_curl_and_python_examples() -> None:
    found = examples()
    assert sum(calls_carebridge(line) for e in found for line in shell_lines(e.text)) >= 7
    assert sum(e.language == "python" for e in found) >= 6


def test_every_curl_example_answers_json_that_is_not_a_problem(stack: Stack) -> None:
    failures: list[str] = []
    for example in examples():
        for line in shell_lines(example.text):
            if not calls_carebridge(line):
                continue
            done = subprocess.run(  # noqa: S603 - the docs' own example lines
                ["/bin/bash", "-c", live(line, stack)],
                cwd=stack.folder,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            try:
                answer = json.loads(done.stdout)
            except ValueError:
                failures.append(f"{example.page}: {line[:80]}: not JSON ({done.returncode})")
                continue
            status = answer.get("status") if isinstance(answer, dict) else None
            if isinstance(status, int) and status >= 400:
                failures.append(f"{example.page}: {line[:80]}: {answer.get('type')}")
    assert not failures


def test_every_python_example_runs(stack: Stack) -> None:
    by_page: dict[str, list[str]] = {}
    for example in examples():
        if example.language == "python":
            by_page.setdefault(example.page, []).append(example.text)
    assert by_page
    for page, blocks in by_page.items():
        namespace: dict[str, object] = {"__name__": f"docs_example_{page}"}
        previous = Path.cwd()
        os.chdir(stack.folder)
        try:
            for number, block in enumerate(blocks, 1):
                code = compile(live(block, stack), f"{page} (python block {number})", "exec")
                exec(code, namespace)  # noqa: S102 - the docs' own examples, run as written
        finally:
            os.chdir(previous)
