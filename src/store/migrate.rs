//! Schema versions and the migrations between them. A store records its version in the
//! meta table; opening an older store migrates it in one transaction, so a crash mid-way
//! leaves the old version intact.
//!
//! History:
//! - v1: steps keyed by one u64, `run << 32 | seq` (capped runs and steps at 2^32 each).
//! - v2: steps keyed by the tuple (run, seq); approvals table.
//! - v3: imports table (the progress of a `trace import` in progress, so a killed one can
//!   resume) and the run state `partial_import`. A v2 store only gains the empty table.
//! - v4: memory_events table (a memory's history); memories may carry `seen` and
//!   `confirmed` (serde defaults: older records read as seen once, unconfirmed).

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::tables::*;
use super::{Result, StoreError};

pub const SCHEMA_VERSION: u32 = 4;
const VERSION_KEY: &str = "schema_version";

/// The v1 layout, frozen: kept so the migration (and its test) can read it.
#[allow(dead_code)] // key() is only used by the test that writes a v1 store
pub mod v1 {
    use redb::TableDefinition;
    pub const STEPS: TableDefinition<u64, &[u8]> = TableDefinition::new("steps_v1");
    pub fn key(run: u64, seq: u64) -> u64 {
        (run << 32) | seq
    }
}

pub fn read_version(tx: &ReadTransaction) -> Result<u32> {
    let meta = match tx.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    version_from(meta.get(VERSION_KEY)?.map(|v| v.value().to_vec()))
}

fn version_from(bytes: Option<Vec<u8>>) -> Result<u32> {
    match bytes {
        None => Ok(0),
        Some(b) => Ok(u32::from_le_bytes(b.as_slice().try_into().map_err(
            |_| StoreError::Corrupt {
                table: "meta",
                detail: "schema_version is not 4 bytes".into(),
            },
        )?)),
    }
}

pub fn write_version(tx: &WriteTransaction, version: u32) -> Result<()> {
    tx.open_table(META)?
        .insert(VERSION_KEY, version.to_le_bytes().as_slice())?;
    Ok(())
}

/// Bring the store to `SCHEMA_VERSION`, creating every table of a new store.
pub fn migrate(db: &Database, path: &Path) -> Result<()> {
    let tx = db.begin_write()?;
    let found = {
        let meta = tx.open_table(META)?;
        version_from(meta.get(VERSION_KEY)?.map(|v| v.value().to_vec()))?
    };
    if found > SCHEMA_VERSION {
        let _ = tx.abort();
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        let _ = tx.abort();
        return Ok(());
    }
    if found == 1 {
        v1_to_v2(&tx)?;
    }
    // Every table exists from here on, so readers never meet a missing one.
    tx.open_table(TICKETS)?;
    tx.open_table(RUNS)?;
    tx.open_table(STEPS)?;
    tx.open_table(MEMORIES)?;
    tx.open_table(MEMORY_VECTORS)?;
    tx.open_table(BLOBS)?;
    tx.open_table(QUEUE)?;
    tx.open_table(APPROVALS)?;
    tx.open_table(AUDIT)?;
    tx.open_table(IMPORTS)?;
    tx.open_table(MEMORY_EVENTS)?;
    write_version(&tx, SCHEMA_VERSION)?;
    tx.commit()?;
    if found != 0 {
        tracing::info!(from = found, to = SCHEMA_VERSION, "migrated store schema");
    }
    Ok(())
}

fn v1_to_v2(tx: &WriteTransaction) -> Result<()> {
    let old: TableDefinition<u64, &[u8]> = v1::STEPS;
    {
        let src = tx.open_table(old)?;
        let mut dst = tx.open_table(STEPS)?;
        for row in src.iter()? {
            let (k, v) = row?;
            let key = k.value();
            dst.insert((key >> 32, key & 0xffff_ffff), v.value())?;
        }
    }
    tx.delete_table(old)?;
    Ok(())
}
