"""The official Python MCP SDK, as a real client, against a running kapable-comms server.

The `mcp_url` fixture (conftest.py) starts the server, or takes KAPABLE_MCP_URL: the full MCP
URL with an agent's key in the path, e.g. http://127.0.0.1:PORT/v1/mcp/ak_xxx.

Written against mcp 2.x (pinned in requirements.txt) but kept working on mcp 1.x: the transport
was renamed (streamablehttp_client -> streamable_http_client) and now yields 2 streams instead
of 3, and model fields went snake_case with camelCase aliases, so results are compared as
`model_dump(by_alias=True)` dicts, i.e. in wire (camelCase) form.

Runs on anyio's pytest plugin, which ships with anyio (a dependency of mcp).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import ClientSession

try:  # mcp >= 1.24 / 2.x
    from mcp.client.streamable_http import streamable_http_client as _http_client
except ImportError:  # older mcp 1.x
    from mcp.client.streamable_http import streamablehttp_client as _http_client

TIMEOUT_S = float(os.environ.get("KAPABLE_MCP_TIMEOUT", "30"))

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession over Streamable HTTP."""
    async with _http_client(url) as streams:
        read_stream, write_stream = streams[0], streams[1]  # 1.x yields a third item (session id getter)
        async with ClientSession(read_stream, write_stream) as session:
            with anyio.fail_after(TIMEOUT_S):
                await session.initialize()
            yield session


def wire(model: Any) -> dict[str, Any]:
    """A pydantic model from the SDK as its JSON (camelCase) form."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def texts(result: dict[str, Any]) -> str:
    return "\n".join(block.get("text", "") for block in result.get("content", []) if block.get("type") == "text")


async def test_lists_tools_and_calls_whoami(mcp_url: str) -> None:
    async with connect(mcp_url) as session:
        with anyio.fail_after(TIMEOUT_S):
            listed = wire(await session.list_tools())
        tools = listed["tools"]
        names = [tool["name"] for tool in tools]
        assert "whoami" in names, f"whoami missing from tools/list: {names}"
        for tool in tools:
            schema = tool.get("inputSchema")
            assert isinstance(schema, dict) and schema.get("type") == "object", (
                f"tool {tool['name']} has inputSchema {schema!r}, want a JSON Schema of type object"
            )

        with anyio.fail_after(TIMEOUT_S):
            result = wire(await session.call_tool("whoami", {}))
        assert not result.get("isError"), f"whoami failed: {texts(result)}"
        structured = result.get("structuredContent")
        assert isinstance(structured, dict), f"whoami returned no structuredContent: {json.dumps(result)}"
        assert structured.get("kind") == "agent", structured
        assert structured.get("org_id"), structured


async def test_whoami_rejects_unknown_argument(mcp_url: str) -> None:
    async with connect(mcp_url) as session:
        with anyio.fail_after(TIMEOUT_S):
            result = wire(await session.call_tool("whoami", {"bogus": 1}))
        assert result.get("isError") is True, f"whoami accepted an unknown argument: {json.dumps(result)}"
        assert "bogus" in texts(result), f"error does not name the bad argument: {texts(result)!r}"


async def test_room_tools_answer_what_their_output_schemas_declare(mcp_url: str) -> None:
    """The SDK checks each structuredContent against the tool's outputSchema; a mismatch fails."""
    async with connect(mcp_url) as session:
        with anyio.fail_after(TIMEOUT_S):
            me = wire(await session.call_tool("whoami", {}))["structuredContent"]
            room = wire(await session.call_tool("create_room", {"name": "python-sdk"}))
            assert not room.get("isError"), texts(room)
            room_id = room["structuredContent"]["room"]["id"]
            start = wire(await session.call_tool("wait_for_events", {}))
            assert not start.get("isError"), texts(start)
            cursor = start["structuredContent"]["next_cursor"]
            posted = wire(
                await session.call_tool(
                    "post_room_message",
                    {"room_id": room_id, "body": "hello from python", "idempotency_key": "py-1"},
                )
            )
            assert not posted.get("isError"), texts(posted)
            beat = wire(
                await session.call_tool("heartbeat", {"room_id": room_id, "agent_id": me["agent_id"]})
            )
            assert not beat.get("isError"), texts(beat)
            listed = wire(await session.call_tool("list_room_messages", {"room_id": room_id}))
            assert listed["structuredContent"]["messages"][0]["body"] == "hello from python"
            events = wire(
                await session.call_tool("wait_for_events", {"after": cursor, "timeout_s": 5})
            )
            kinds = [e["event"] for e in events["structuredContent"]["events"]]
            assert "message" in kinds, kinds
            presence = wire(await session.call_tool("room_presence", {"room_id": room_id}))
            assert presence["structuredContent"]["presence"][0]["online"] is True
