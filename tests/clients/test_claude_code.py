"""Claude Code itself: `claude mcp add --transport http` then `claude mcp list` shows the
server connected. Claude Code's `mcp add` and `mcp list` work without a login."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

CLAUDE_CODE_VERSION = "2.1.332"


def claude_binary() -> Path:
    clients = Path(os.environ.get("CLIENTS_DIR", "/var/tmp/kapable-clients"))
    binary = clients / "node_modules" / ".bin" / "claude"
    package = clients / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"
    if not binary.exists() or f'"version": "{CLAUDE_CODE_VERSION}"' not in package.read_text():
        subprocess.run(
            ["npm", "install", "--prefix", str(clients), "--no-audit", "--no-fund",
             "--loglevel=error", f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
            check=True,
            timeout=600,
        )
    return binary


def test_claude_code_lists_the_server_as_connected(mcp_url: str) -> None:
    claude = str(claude_binary())
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        add = subprocess.run(
            [claude, "mcp", "add", "--transport", "http", "kapable-chat", mcp_url],
            cwd=home, env=env, capture_output=True, text=True, timeout=120,
        )
        assert add.returncode == 0, add.stdout + add.stderr
        listed = subprocess.run(
            [claude, "mcp", "list"], cwd=home, env=env, capture_output=True, text=True, timeout=120,
        )
    line = next((l for l in listed.stdout.splitlines() if l.startswith("kapable-chat")), "")
    assert "(HTTP)" in line and "Connected" in line, listed.stdout + listed.stderr
