//! `trace export`: a run as JSONL, one `Step` a line with every payload inline, so the
//! file stands alone (and imports back with the `jsonl` format); or as OpenTelemetry spans
//! in OTLP/JSON (`otel`).

use std::io::Write;

use super::TraceError;
use crate::model::RunId;
use crate::store::{Store, StoreError};

/// What `trace export` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// shopfloor's own: one `Step` a line.
    #[default]
    Jsonl,
    /// OTLP/JSON: one `ExportTraceServiceRequest` a line (see `otel`).
    Otlp,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 2] = [ExportFormat::Jsonl, ExportFormat::Otlp];

    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Otlp => "otlp",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown export format `{s}`; use jsonl or otlp"))
    }
}

/// Write every step of `run` to `out`; returns the number of steps written.
pub fn export_jsonl(store: &Store, run: RunId, out: &mut dyn Write) -> Result<u64, TraceError> {
    if store.run(run)?.is_none() {
        return Err(TraceError::RunNotFound(run));
    }
    let mut n = 0u64;
    let mut write_err: Option<std::io::Error> = None;
    let res = store.for_each_step(run, |mut step| {
        store.inline_step(&mut step)?;
        let mut line = serde_json::to_vec(&step).map_err(|e| StoreError::Corrupt {
            table: "steps",
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        if let Err(e) = out.write_all(&line) {
            write_err = Some(e);
            // Stop the scan; the write error is reported below.
            return Err(StoreError::Invalid("export write failed".into()));
        }
        n += 1;
        Ok(())
    });
    if let Some(e) = write_err {
        return Err(TraceError::Write(e));
    }
    res?;
    out.flush().map_err(TraceError::Write)?;
    Ok(n)
}
