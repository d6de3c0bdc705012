"""The emulated tenant is an extra: carebridge imports without it, and ``carebridge sandbox serve``
without it says which extra to install, in one line."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from carebridge.cli.main import app

HIDE_SANDBOX = """
import sys

class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name == "carecloud_sandbox" or name.startswith("carecloud_sandbox."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
"""


def test_the_product_imports_without_the_emulator() -> None:
    """Every entry point loads with carecloud_sandbox absent, and none of them loads it."""
    code = HIDE_SANDBOX + (
        "import carebridge.cli.main, carebridge.api.main, carebridge.wiring.jobs\n"
        "assert not [m for m in sys.modules if m.startswith('carecloud_sandbox')]\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_serve_without_the_extra_is_one_line_naming_it() -> None:
    code = HIDE_SANDBOX + (
        "from typer.testing import CliRunner\n"
        "from carebridge.cli.main import app\n"
        "result = CliRunner().invoke(app, ['sandbox', 'serve', '--patients', '5'])\n"
        "print(result.exit_code)\n"
        "print(result.output, end='')\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    exit_code, *lines = done.stdout.splitlines()
    assert exit_code == "2"
    assert lines == [
        "error: the emulated tenant is not installed (carecloud_sandbox); "
        "install carebridge[sandbox]"
    ]


def test_the_sandbox_command_is_listed_with_the_extra_installed() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "sandbox" in result.output
