"""`runner validate` starts lean: no module it does not need, same answers from pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONTRACT = Path("/work/shared/contract/specs")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_validate_skips_the_plugin_scan_and_jinja_when_not_needed() -> None:
    if not CONTRACT.is_dir():
        pytest.skip("shared contract specs not present")
    code = (
        "import sys\n"
        "from runner.cli.main import main\n"
        f"rc = main(['validate', {str(CONTRACT)!r}])\n"
        "heavy = ('importlib.metadata', 'jinja2', 'azure', 'jsonschema', 'runner.runtime')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(heavy)))\n"
        "sys.exit(rc)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED []" in proc.stdout


def test_the_plugin_loader_stand_in_hands_over_when_plugins_are_enabled() -> None:
    code = (
        "import os, sys\n"
        "import runner.cli.validate\n"
        "import pydantic.plugin._loader as loader\n"
        "assert tuple(loader.get_plugins()) == ()\n"
        "assert 'importlib.metadata' not in sys.modules\n"
        "os.environ['PYDANTIC_DISABLE_PLUGINS'] = ''\n"
        "plugins = loader.get_plugins()\n"
        "real = sys.modules['pydantic.plugin._loader']\n"
        "assert real is not loader and hasattr(real, 'PYDANTIC_ENTRY_POINT_GROUP')\n"
        "assert list(plugins) == list(real.get_plugins())\n"
        "from runner.spec.models import Agent\n"
        "print('OK')\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "OK"
