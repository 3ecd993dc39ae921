#!/usr/bin/env bash
# Build the image the Docker sandbox tests run in, without any container registry:
# debootstrap a minimal Debian bookworm from the machine's own configured Debian mirror and
# `docker import` it. Bookworm because a shopfloor binary built on this host (bookworm's
# glibc) is bind-mounted into the container and must run there.
#
# Cached by tag: when the image already exists this does nothing, so CI can call it on
# every run. Runs unattended as root (CI=true); installs debootstrap with apt-get if needed.
#
# Usage: scripts/build-test-image.sh [TAG]    (default shopfloor-test-base:bookworm-v2)
set -euo pipefail

TAG="${1:-shopfloor-test-base:bookworm-v2}"
SUITE=bookworm

if ! command -v docker >/dev/null 2>&1; then
    echo "build-test-image: the docker CLI is not installed; install docker.io (apt-get install docker.io)" >&2
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    echo "build-test-image: no Docker engine answers; start it (e.g. 'service docker start' or 'dockerd &')" >&2
    exit 1
fi
if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-test-image: $TAG already exists, nothing to do"
    exit 0
fi

# The mirror this machine is configured to use: the first URIs line of the deb822 source
# that carries the main archive (not -security), else the classic sources.list.
mirror=""
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    mirror="$(awk '
        /^URIs:/ { uri = $2 }
        /^Suites:/ { if ($0 !~ /-security/ && uri != "") { print uri; exit } }
    ' /etc/apt/sources.list.d/debian.sources)"
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror="$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list)"
fi
if [ -z "$mirror" ]; then
    echo "build-test-image: cannot find a Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/shopfloor-rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

start=$(date +%s)
echo "build-test-image: debootstrap --variant=minbase (+git, python3) $SUITE from $mirror"
# git: agents commit in their sandbox (the tests check it works with the clone's objects
# mounted read-only); python3: the demo repository's tests.
debootstrap --variant=minbase --include=git,python3 "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    echo "build-test-image: debootstrap failed; last lines of its log:" >&2
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
# Nothing in the image should need apt caches; keep it small.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$TAG" >/dev/null
echo "build-test-image: built $TAG in $(( $(date +%s) - start ))s"
