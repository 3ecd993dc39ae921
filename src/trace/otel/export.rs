//! Encoding spans for OTLP: bounded export requests with the resource, and OTLP/JSON lines.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::{SpanOptions, read_run_spans, s};
use crate::model::RunId;
use crate::store::{Store, StoreError};
use crate::trace::TraceError;

/// Who sent the spans: the OTLP resource and instrumentation scope.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// `service.name` (`[telemetry] service_name`).
    pub name: String,
    pub workspace: String,
}

/// A request holds at most this many spans and about this many encoded bytes, under the
/// 4 MiB that gRPC-based collectors and many HTTP receivers accept by default.
pub const MAX_REQUEST_SPANS: usize = 512;
pub const MAX_REQUEST_BYTES: usize = 3 << 20;

const SCOPE: &str = "shopfloor";

/// Spans as OTLP export requests, each under the span and byte bounds above, every one
/// carrying the resource (`service.name`, `service.version`, `shopfloor.workspace`).
pub fn export_requests(spans: Vec<Span>, service: &Service) -> Vec<ExportTraceServiceRequest> {
    let resource = Resource {
        attributes: vec![
            s("service.name", service.name.as_str()),
            s("service.version", env!("CARGO_PKG_VERSION")),
            s("shopfloor.workspace", service.workspace.as_str()),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: SCOPE.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    let wrap = |spans: Vec<Span>| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope.clone()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for span in spans {
        let len = span.encoded_len();
        if !batch.is_empty()
            && (batch.len() >= MAX_REQUEST_SPANS || bytes + len > MAX_REQUEST_BYTES)
        {
            out.push(wrap(std::mem::take(&mut batch)));
            bytes = 0;
        }
        bytes += len;
        batch.push(span);
    }
    if !batch.is_empty() {
        out.push(wrap(batch));
    }
    out
}

/// Write a run as OTLP/JSON: one `ExportTraceServiceRequest` a line, the form the
/// OpenTelemetry Collector's `file` exporter writes and its `otlpjsonfile` receiver reads.
/// Returns the number of lines.
pub fn export_otlp_json(
    store: &Store,
    run: RunId,
    opts: &SpanOptions,
    service: &Service,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let spans = read_run_spans(store, run, opts)?;
    let mut n = 0u64;
    for req in export_requests(spans, service) {
        let mut line = serde_json::to_vec(&req).map_err(|e| {
            TraceError::Store(StoreError::Invalid(format!(
                "cannot encode run {run}'s spans as JSON: {e}"
            )))
        })?;
        line.push(b'\n');
        out.write_all(&line).map_err(TraceError::Write)?;
        n += 1;
    }
    out.flush().map_err(TraceError::Write)?;
    Ok(n)
}
