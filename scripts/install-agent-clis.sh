#!/usr/bin/env bash
# Install the pinned real agent CLIs the tests, the benchmark and the agent test image run:
# Claude Code and Codex, from the PyPI wheels that bundle their standalone binaries (PyPI
# is a registry this project's machines reach; the vendors' own download sites are not).
#
# Layout (DIR defaults to $SHOPFLOOR_AGENT_CLIS, else ~/.cache/shopfloor/agent-clis):
#   DIR/claude-VERSION/claude                    the standalone Claude Code binary
#   DIR/codex-VERSION/{bin/codex,codex-path/rg,codex-resources/bwrap,...}
#                                                the Codex package as its wheel lays it out:
#                                                codex finds bwrap in codex-resources/ next
#                                                to its own (symlink-resolved) executable
#   DIR/bin/{claude,codex,rg}                    symlinks to the above: put DIR/bin on PATH
#
# Idempotent and cached by version: a version already in place is left alone, so CI can
# call this on every run. Wheels are downloaded without dependencies (pip download
# --no-deps) and unzipped; unzip may drop the executable bits, so they are set again
# (without them codex fails every command with "bubblewrap is unavailable").
#
# Usage: scripts/install-agent-clis.sh [DIR]
set -euo pipefail

CLAUDE_VERSION=2.1.332
CLAUDE_WHEEL=claude-agent-sdk==0.2.189
CODEX_VERSION=0.163.0
CODEX_WHEEL=openai-codex-cli-bin==0.163.0

DIR="${1:-${SHOPFLOOR_AGENT_CLIS:-$HOME/.cache/shopfloor/agent-clis}}"
mkdir -p "$DIR/bin"
DIR="$(cd "$DIR" && pwd)"

say() { echo "install-agent-clis: $*"; }

for tool in unzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
    fi
done
PIP=""
for p in pip3 pip "python3 -m pip"; do
    if $p --version >/dev/null 2>&1; then PIP="$p"; break; fi
done
need_pip() {
    if [ -z "$PIP" ]; then
        echo "install-agent-clis: pip is not installed; install it (apt-get install python3-pip)" >&2
        exit 1
    fi
}

# Download WHEEL into a temp dir and unzip the members matching PATTERN into DEST.
fetch_wheel() {
    local wheel="$1" dest="$2" pattern="$3"
    need_pip
    local tmp
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/agent-clis.XXXXXX")"
    # The platform wheel for this machine only; no dependencies (the Python SDK's are not
    # needed to run the bundled binary).
    $PIP download --quiet --no-deps --only-binary=:all: "$wheel" -d "$tmp" >&2
    local file
    file="$(ls "$tmp"/*.whl)"
    rm -rf "$dest.partial"
    mkdir -p "$dest.partial"
    unzip -q -o "$file" "$pattern" -d "$dest.partial"
    rm -rf "$tmp"
}

claude_dir="$DIR/claude-$CLAUDE_VERSION"
if [ -x "$claude_dir/claude" ]; then
    say "Claude Code $CLAUDE_VERSION already in $claude_dir"
else
    say "downloading $CLAUDE_WHEEL (Claude Code $CLAUDE_VERSION)"
    fetch_wheel "$CLAUDE_WHEEL" "$claude_dir" 'claude_agent_sdk/_bundled/*'
    bundled="$claude_dir.partial/claude_agent_sdk/_bundled"
    got="$(cat "$bundled/claude.version" 2>/dev/null || true)"
    case "$got" in
        "$CLAUDE_VERSION "*) ;;
        *) echo "install-agent-clis: $CLAUDE_WHEEL bundles Claude Code '$got', not $CLAUDE_VERSION" >&2; exit 1 ;;
    esac
    mv "$bundled/claude" "$claude_dir.partial/claude"
    rm -rf "$claude_dir.partial/claude_agent_sdk"
    chmod +x "$claude_dir.partial/claude"
    rm -rf "$claude_dir"
    mv "$claude_dir.partial" "$claude_dir"
fi

codex_dir="$DIR/codex-$CODEX_VERSION"
if [ -x "$codex_dir/bin/codex" ] && [ -x "$codex_dir/codex-resources/bwrap" ]; then
    say "Codex $CODEX_VERSION already in $codex_dir"
else
    say "downloading $CODEX_WHEEL (Codex $CODEX_VERSION)"
    fetch_wheel "$CODEX_WHEEL" "$codex_dir" 'codex_cli_bin/*'
    pkg="$codex_dir.partial/codex_cli_bin"
    if ! grep -q "\"version\": \"$CODEX_VERSION\"" "$pkg/codex-package.json"; then
        echo "install-agent-clis: $CODEX_WHEEL is not Codex $CODEX_VERSION" >&2
        exit 1
    fi
    rm -f "$pkg/__init__.py"
    chmod +x "$pkg"/bin/* "$pkg"/codex-path/* "$pkg"/codex-resources/*
    rm -rf "$codex_dir"
    mv "$pkg" "$codex_dir"
    rm -rf "$codex_dir.partial"
fi

# Relative symlinks, so DIR can be moved or copied into an image whole.
ln -sfn "../claude-$CLAUDE_VERSION/claude" "$DIR/bin/claude"
ln -sfn "../codex-$CODEX_VERSION/bin/codex" "$DIR/bin/codex"
ln -sfn "../codex-$CODEX_VERSION/codex-path/rg" "$DIR/bin/rg"

say "ready: $("$DIR/bin/claude" --version 2>/dev/null | head -n1), $("$DIR/bin/codex" --version 2>/dev/null | head -n1) in $DIR/bin"
