"""Processes for the tests: a free loopback port, waiting until a URL answers, and the emulated
tenant as a child process (``carebridge sandbox serve``) for the tests that run carebridge's own
processes against it over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, seconds: float = 120) -> None:
    """Poll ``url`` until it answers below 500; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@contextmanager
def served_sandbox(*, patients: int = 40, practices: int = 1) -> Iterator[str]:
    """``carebridge sandbox serve`` on a free port, as a child process; yields its base URL."""
    port = free_port()
    child = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "carebridge",
            "sandbox",
            "serve",
            f"--port={port}",
            f"--patients={patients}",
            f"--practices={practices}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/_sandbox/credentials")
        yield base
    finally:
        child.terminate()
        child.wait(timeout=30)
