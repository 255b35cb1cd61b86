"""The README's REST tour, run as written against the started server with bash, curl and jq."""

from __future__ import annotations

import re
import subprocess

from conftest import ROOT


def rest_tour() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The tour in REST", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_rest_tour_runs_as_written(mcp_url: str, app_token: str) -> None:
    base = mcp_url.split("/v1/mcp", 1)[0]
    script = rest_tour()
    assert script.startswith("API=http://127.0.0.1:8787; TOKEN=kap_...\n"), script
    script = script.replace("API=http://127.0.0.1:8787; TOKEN=kap_...", f"API={base}; TOKEN={app_token}")
    # The last line follows the stream until interrupted: read its first events and stop.
    script = script.replace("curl -N ", "timeout 2 curl -N ").replace("/stream     #", "/stream?after=0 #")
    run = subprocess.run(["bash", "-c", "set -eu\n" + script], capture_output=True, text=True, timeout=60)
    posted = '"body":"Deployment started for v2.1"'
    assert run.stdout.count(posted) >= 2, run.stdout + run.stderr  # the post, then the history
    assert '"display_name":"Ada"' in run.stdout, run.stdout
    assert "event: member_joined" in run.stdout and "event: message" in run.stdout, run.stdout
