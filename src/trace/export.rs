//! `trace export`: a run as JSONL, one `Step` a line with every payload inline, so the
//! file stands alone (and imports back with the `jsonl` format).

use std::io::Write;

use super::TraceError;
use crate::model::RunId;
use crate::store::{Store, StoreError};

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
