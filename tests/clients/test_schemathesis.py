"""Schema fuzzing of the REST API: schemathesis against the served /openapi.json.

Every check is on: no server error, statuses, content types and bodies as documented, bad data
refused and good data accepted. Two orgs take part as peers, each with its own app token, so the
`object_level_authorization` check replays one org's reads with the other's token and fails if
an object crosses over. Each org starts with a few real objects (an agent and its key, a mailbox
with a channel and a sent message, a room with a message and an invite, an app token), offered to
the fuzzer for the path and body ids that name them so that it reaches past the 404s. Both orgs
are new, so what the fuzzer deletes or revokes is theirs alone.

The long poll (`wait_for_events`) is left out; the streams are not operations and are not in the
document. The run is bounded by KAPABLE_FUZZ_SECONDS (default 120); a failure prints
schemathesis's report with a `curl` line that reproduces each case.

Run alone: `python -m pytest tests/clients/test_schemathesis.py -q` (after `cargo build`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from conftest import server_binary

FUZZ_SECONDS = int(os.environ.get("KAPABLE_FUZZ_SECONDS", "120"))

# The operations the fuzzer leaves alone: the long poll holds each request for up to 30 s.
EXCLUDED = ["wait_for_events"]


def test_the_rest_api_conforms_to_its_openapi_document(
    mcp_url: str, database_url: str, tmp_path: Path
) -> None:
    base = mcp_url.split("/v1/mcp/")[0]
    # Orgs of its own: the fuzzer deletes and revokes what it finds, and the other tests need
    # the first org's agent and key.
    tokens = {name: create_org(f"fuzz-{name}", database_url) for name in ("alpha", "beta")}
    seeds = [seed(base, token) for token in tokens.values()]

    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auth": [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {token}"}]}
        for name, token in tokens.items()
    ]}))
    config = tmp_path / "schemathesis.toml"
    config.write_text(settings(auth, seeds))

    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        # Every check is on unless the configuration turns one off for one operation, saying why
        # (`--checks all` would turn it back on).
        "run", f"{base}/openapi.json", "--max-time", str(FUZZ_SECONDS),
        "--workers", "2", "--request-timeout", "10",
        *(argument for op in EXCLUDED for argument in ("--exclude-operation-id", op)),
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    # Shown with `pytest -s`: what ran, how long, and the warnings about what it could not reach.
    print(run.stdout)
    assert run.returncode == 0, f"schemathesis found failures:\n{run.stdout}\n{run.stderr}"


def create_org(name: str, database_url: str) -> str:
    """Creates an org with the admin command and returns its app token."""
    created = subprocess.run(
        [str(server_binary()), "admin", "--database-url", database_url, "create-org", name],
        capture_output=True, text=True, check=True,
    )
    return json.loads(created.stdout)["app_token"]


def seed(base: str, token: str) -> dict[str, list[str]]:
    """Creates one of each object the org can own and returns their ids by parameter name."""
    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{base}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    me = call("GET", "/v1/me")
    suffix = me["org_id"][-12:]
    agent = call("POST", "/v1/agents", {"name": f"fuzz-{suffix}"})
    key = call("POST", f"/v1/agents/{agent['id']}/keys", {"label": "fuzz"})
    mailbox = call("POST", "/v1/mailboxes", {
        "address": f"fuzz@{suffix}.example.com", "agent_id": agent["id"],
    })
    channel = call("POST", "/v1/channels", {"mailbox_id": mailbox["id"], "kind": "email"})
    sent = call("POST", f"/v1/mailboxes/{mailbox['id']}/send", {
        "to": "someone@example.com", "subject": "seed", "body_text": "seed",
    })
    room = call("POST", "/v1/rooms", {"name": "fuzz"})["room"]
    message = call("POST", f"/v1/rooms/{room['id']}/messages", {"body": "seed"})
    invite = call("POST", f"/v1/rooms/{room['id']}/invites", {})
    app = call("POST", f"/v1/orgs/{me['org_id']}/app-tokens", {"label": "fuzz"})
    return {
        "org_id": [me["org_id"]],
        "agent_id": [agent["id"]],
        "key_id": [key["id"]],
        "mailbox_id": [mailbox["id"]],
        "channel_id": [channel["id"]],
        "message_id": [sent["id"], message["id"]],
        "room_id": [room["id"]],
        "invite_id": [invite["id"]],
        "token": [invite["token"]],
        "token_id": [app["id"]],
    }


def settings(auth: Path, seeds: list[dict[str, list[str]]]) -> str:
    """The schemathesis configuration: both orgs as peers, and the seeds as dictionaries."""
    lines = [
        "[auth.wfc]",
        f"path = {json.dumps(str(auth))}",
        'peers = ["alpha", "beta"]',
        "",
        # No input text may hold U+0000 (Postgres stores none); the README says so once rather
        # than every string of the document.
        "[generation]",
        "allow-x00 = false",
        "",
        # Bad data in a URL over 4 KiB is refused before it is read: 414, as documented.
        "[checks.negative_data_rejection]",
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", '
        '"422", "428", "429", "5xx"]',
        "",
        # A well-formed invite token that was used up, revoked or expired is 410, as documented.
        *accepting("join_room", "410"),
        # Rules no JSON Schema can state, each answered 400 naming its field: `before` and
        # `after` of one query exclude each other; `reply_to` must be a message of the room; a
        # recipient list must parse as RFC 5322 addresses, and `from` must be the mailbox's own.
        *accepting("list_room_messages", "400"),
        *accepting("post_room_message", "400"),
        *accepting("send_email", "400"),
        # Its 404 may be about the body's `agent_id` (an agent of another org, or none), which
        # the check would take for the room the path names.
        "[[operations]]",
        'include-operation-id = "invite_agent_to_room"',
        "checks.ensure_resource_availability.enabled = false",
        "",
        # Deleting a mailbox's quotas clears its overrides; the quotas, now the defaults, are
        # still there to read, which the check would take for a deleted resource still served.
        *[
            line
            for operation in ("delete_mailbox_quotas", "get_mailbox_quotas")
            for line in (
                "[[operations]]",
                f'include-operation-id = "{operation}"',
                "checks.use_after_free.enabled = false",
                "",
            )
        ],
    ]
    names = sorted({name for ids in seeds for name in ids})
    for name in names:
        values = [value for ids in seeds for value in ids.get(name, [])]
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name in names:
        for location in ("path", "query", "body"):
            lines.append(f'"{location}.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def accepting(operation: str, status: str) -> list[str]:
    """Lets `operation` answer schema-valid data with `status` besides the usual answers."""
    statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", status]
    return [
        "[[operations]]",
        f'include-operation-id = "{operation}"',
        f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}",
        "",
    ]
