"""Starts a kapable-comms server for the external-client tests, unless one is given.

- KAPABLE_MCP_URL: use this running server's MCP URL (token in the path) instead of starting one.
- KAPABLE_BIN: the server binary (default: the debug build in cargo's target directory).
- KAPABLE_DATABASE_URL: the database for the started server (default: a fresh SQLite file).

The started server listens on a free port and prints, on its first start, the key of the agent
`assistant`; the tests connect as that agent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The org app token the started server printed on its first start (absent for KAPABLE_MCP_URL).
APP_TOKEN: dict[str, str] = {}
# The database URL of the started server (absent for KAPABLE_MCP_URL).
DATABASE: dict[str, str] = {}


def server_binary() -> Path:
    if os.environ.get("KAPABLE_BIN"):
        return Path(os.environ["KAPABLE_BIN"])
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    target = Path(json.loads(metadata.stdout)["target_directory"])
    return target / "debug" / "kapable-comms"


@pytest.fixture(scope="session")
def app_token(mcp_url: str) -> str:
    """The org app token of the started server."""
    if "token" not in APP_TOKEN:
        pytest.skip("no app token: the server was not started by these tests")
    return APP_TOKEN["token"]


@pytest.fixture(scope="session")
def database_url(mcp_url: str) -> str:
    """The database URL of the started server, for `kapable-comms admin`."""
    if "url" not in DATABASE:
        pytest.skip("no database: the server was not started by these tests")
    return DATABASE["url"]


@pytest.fixture(scope="session")
def mcp_url() -> Iterator[str]:
    if os.environ.get("KAPABLE_MCP_URL"):
        yield os.environ["KAPABLE_MCP_URL"]
        return
    binary = server_binary()
    if not binary.exists():
        pytest.fail(f"no server binary at {binary}: run `cargo build` or set KAPABLE_BIN")
    with tempfile.TemporaryDirectory() as data:
        database = os.environ.get("KAPABLE_DATABASE_URL") or f"sqlite://{data}/comms.db"
        DATABASE["url"] = database
        server = subprocess.Popen(
            [
                str(binary), "serve", "--listen", "127.0.0.1:0", "--database-url", database,
                "--outbox-dir", f"{data}/outbox",
                # The REST fuzzer presents wrong tokens on purpose, thousands a minute from one
                # address; the throttle would answer it 429 for the rest of the run. The
                # throttle has tests of its own (tests/api/limits.rs).
                "--auth-failures-per-minute", "1000000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield wait_until_serving(server)
        finally:
            server.terminate()
            server.wait(timeout=30)


def wait_until_serving(server: subprocess.Popen[str]) -> str:
    """Reads the first-start key from stdout and the address from the serving log line."""
    found: dict[str, str] = {}
    have_key, have_address = threading.Event(), threading.Event()

    def read_stdout() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            if match := re.search(r"\b(kap_[A-Za-z0-9]+)", line):
                APP_TOKEN.setdefault("token", match.group(1))
            if (match := re.search(r"\b(ak_[A-Za-z0-9]+)", line)) and not have_key.is_set():
                found["key"] = match.group(1)
                have_key.set()

    def read_stderr() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            if match := re.search(r"listen=(\S+)", line):
                found["address"] = match.group(1)
                have_address.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=read_stderr, daemon=True).start()
    if not have_address.wait(timeout=60):
        pytest.fail("the server did not report that it is serving within 60 s")
    # The key is printed before the server starts serving; its reader may lag a little.
    if not have_key.wait(timeout=10):
        pytest.fail("the server printed no agent key: is the database new?")
    return f"http://{found['address']}/v1/mcp/{found['key']}"
