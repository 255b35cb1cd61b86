"""`kapable-comms mcp-stdio`, driven over stdio by the official Python MCP SDK.

The bridge is started as a subprocess with the gateway's MCP URL and the agent's key in
KAPABLE_TOKEN (never on its command line); every message goes through it to the gateway over
HTTP and back.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import server_binary
from test_python_sdk import TIMEOUT_S, texts, wire

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def bridged(mcp_url: str, token: str) -> AsyncIterator[ClientSession]:
    """A session through the stdio bridge to the endpoint (the URL without the key)."""
    endpoint = mcp_url.rsplit("/", 1)[0]
    params = StdioServerParameters(
        command=str(server_binary()),
        args=["mcp-stdio", "--url", endpoint],
        env={**os.environ, "KAPABLE_TOKEN": token, "RUST_LOG": "warn"},
    )
    async with stdio_client(params) as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream) as session:
            with anyio.fail_after(TIMEOUT_S):
                await session.initialize()
            yield session


def key_of(mcp_url: str) -> str:
    return mcp_url.rsplit("/", 1)[1]


async def test_the_bridge_lists_tools_and_calls_them(mcp_url: str) -> None:
    async with bridged(mcp_url, key_of(mcp_url)) as session:
        with anyio.fail_after(TIMEOUT_S):
            names = [tool["name"] for tool in wire(await session.list_tools())["tools"]]
            me = wire(await session.call_tool("whoami", {}))
            room = wire(await session.call_tool("create_room", {"name": "through-stdio"}))
            bad = wire(await session.call_tool("whoami", {"bogus": 1}))
        assert "post_room_message" in names, names
        assert me["structuredContent"]["kind"] == "agent", json.dumps(me)
        assert room["structuredContent"]["room"]["name"] == "through-stdio", json.dumps(room)
        assert bad.get("isError") is True and "bogus" in texts(bad), json.dumps(bad)


async def test_many_requests_at_once_each_get_their_own_answer(mcp_url: str) -> None:
    async with bridged(mcp_url, key_of(mcp_url)) as session:
        names: dict[int, str] = {}

        async def create(i: int) -> None:
            result = wire(await session.call_tool("create_room", {"name": f"parallel-{i}"}))
            names[i] = result["structuredContent"]["room"]["name"]

        with anyio.fail_after(TIMEOUT_S):
            async with anyio.create_task_group() as group:
                for i in range(8):
                    group.start_soon(create, i)
        assert names == {i: f"parallel-{i}" for i in range(8)}


async def test_a_wrong_key_is_answered_not_hung(mcp_url: str) -> None:
    with pytest.raises(Exception) as refused:
        async with bridged(mcp_url, "ak_" + "0" * 43):
            pass
    # The SDK wraps the JSON-RPC error in its task groups' exception groups.
    assert "unauthorized" in repr(refused.value), repr(refused.value)
