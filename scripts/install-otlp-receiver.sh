#!/usr/bin/env bash
# Install the real OTLP consumer the telemetry tests post spans to: the OpenTelemetry
# project's own Python protobuf bindings (`opentelemetry-proto`, with `protobuf`), from PyPI,
# into a virtualenv. `tests/otlp_receiver.py` decodes each OTLP/HTTP request with them, so
# a span shopfloor encodes wrongly fails to parse there, as it would in a collector.
#
# Layout (DIR defaults to $SHOPFLOOR_OTLP_PY, else ~/.cache/shopfloor/otlp-py):
#   DIR/bin/python      the venv's interpreter; `python tests/otlp_receiver.py` runs the receiver
#   DIR/.installed      the pinned versions, written last: the venv is whole when it exists
#
# Idempotent: a venv holding these pins is left alone, so CI can call this on every run.
#
# Usage: scripts/install-otlp-receiver.sh [DIR]
set -euo pipefail

PINS=(opentelemetry-proto==1.45.2 protobuf==7.36.2)

DIR="${1:-${SHOPFLOOR_OTLP_PY:-$HOME/.cache/shopfloor/otlp-py}}"
say() { echo "install-otlp-receiver: $*"; }

want="${PINS[*]}"
if [ -x "$DIR/bin/python" ] && [ "$(cat "$DIR/.installed" 2>/dev/null)" = "$want" ]; then
    say "already installed in $DIR ($want)"
    exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
    echo "install-otlp-receiver: python3 has no venv module; install it (apt-get install python3-venv)" >&2
    exit 1
fi
rm -rf "$DIR"
mkdir -p "$(dirname "$DIR")"
python3 -m venv "$DIR"
"$DIR/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
# Prove the bindings load before calling the venv whole.
"$DIR/bin/python" -c 'from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest'
echo "$want" > "$DIR/.installed"
say "installed $want in $DIR"
