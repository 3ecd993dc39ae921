"""A small real OTLP/HTTP trace receiver for shopfloor's telemetry tests.

It decodes each POST /v1/traces body with the OpenTelemetry project's own protobuf
bindings (`opentelemetry-proto` from PyPI, installed by scripts/install-otlp-receiver.sh),
so a request shopfloor encodes wrongly is refused here as a collector would refuse it.

Usage: python otlp_receiver.py OUT.jsonl [--fail-first N]

Listens on 127.0.0.1 on a free port and prints `port N` on stdout once it listens. Each
span received becomes one JSON line in OUT.jsonl: name, trace_id, span_id, parent_span_id
(hex), kind, start/end (ns), when it was received (ns), attributes (key -> value), status {code, message}, events,
resource (its attributes) and the request's sequence number. A body that does not decode
writes {"error": ...} instead and is answered 400. `--fail-first N` answers the first N
requests 503, to exercise the sender's retries.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


class Receiver(BaseHTTPRequestHandler):
    lock = threading.Lock()
    out = None
    requests = 0
    fail_first = 0

    def log_message(self, *args):
        pass

    def write(self, obj):
        with Receiver.lock:
            Receiver.out.write(json.dumps(obj) + "\n")
            Receiver.out.flush()

    def answer(self, code, body=b"", content_type="application/x-protobuf"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with Receiver.lock:
            Receiver.requests += 1
            seq = Receiver.requests
        if self.path != "/v1/traces":
            self.write({"error": f"POST to {self.path}, not /v1/traces"})
            return self.answer(404, b"not found", "text/plain")
        if seq <= Receiver.fail_first:
            return self.answer(503, b"try later", "text/plain")
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.write({"error": f"content type {self.headers.get('Content-Type')}"})
            return self.answer(415, b"want application/x-protobuf", "text/plain")
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(body)
        except Exception as e:  # a malformed body is what this receiver exists to catch
            self.write({"error": f"cannot decode the request: {e}"})
            return self.answer(400, str(e).encode(), "text/plain")
        headers = {k.lower(): v for k, v in self.headers.items()}
        for rs in req.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    self.write(
                        {
                            "request": seq,
                            "received": time.time_ns(),
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "attributes": attributes(span.attributes),
                            "status": {
                                "code": span.status.code,
                                "message": span.status.message,
                            },
                            "events": [
                                {"name": e.name, "attributes": attributes(e.attributes)}
                                for e in span.events
                            ],
                            "resource": resource,
                            "scope": ss.scope.name,
                            "headers": {
                                k: v for k, v in headers.items() if k.startswith("x-")
                            },
                        }
                    )
        self.answer(200, ExportTraceServiceResponse().SerializeToString())


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit("usage: otlp_receiver.py OUT.jsonl [--fail-first N]")
    Receiver.out = open(args[0], "a", encoding="utf-8")
    if "--fail-first" in args:
        Receiver.fail_first = int(args[args.index("--fail-first") + 1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
