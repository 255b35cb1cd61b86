"""The official MCP conformance suite's scenarios that apply to any server."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("conformance.sh")


def test_the_conformance_suite_passes_its_generic_server_scenarios(mcp_url: str) -> None:
    run = subprocess.run(["bash", str(SCRIPT), mcp_url], capture_output=True, text=True, timeout=900)
    print(run.stdout)
    print(run.stderr)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed, 0 failed" in run.stdout
