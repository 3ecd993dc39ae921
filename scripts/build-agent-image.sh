#!/usr/bin/env bash
# Build the Docker image the real-agent tests run Claude Code and Codex in: the registry-free
# test image (scripts/build-test-image.sh) plus the pinned CLIs (scripts/install-agent-clis.sh)
# under /opt/agent-clis, on the image's PATH. No registry is needed: the base image is local.
#
# Cached by tag (the tag names both CLI versions): when it exists this does nothing, so CI
# can call it on every run.
#
# Usage: scripts/build-agent-image.sh [TAG]
#        (default shopfloor-test-agents:claude-2.1.332-codex-0.163.0)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=shopfloor-test-base:bookworm-v2
TAG="${1:-shopfloor-test-agents:claude-2.1.332-codex-0.163.0}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-agent-image: $TAG already exists, nothing to do"
    exit 0
fi
bash scripts/build-test-image.sh "$BASE"
CLIS="${SHOPFLOOR_AGENT_CLIS:-$HOME/.cache/shopfloor/agent-clis}"
bash scripts/install-agent-clis.sh "$CLIS"

start=$(date +%s)
# The CLIs' directory is the build context: its bin/ holds relative symlinks, kept as they are.
docker build --quiet -t "$TAG" -f - "$CLIS" >/dev/null <<DOCKERFILE
FROM $BASE
COPY . /opt/agent-clis
ENV PATH=/opt/agent-clis/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKERFILE
echo "build-agent-image: built $TAG in $(( $(date +%s) - start ))s"
