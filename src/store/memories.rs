//! Memories in the store: adding them with their vectors, their history, visiting them all.

use redb::{ReadableTable, WriteTransaction};

use super::tables::*;
use super::{Result, Store, decode, encode, next_id};
use crate::model::{Memory, MemoryEvent, MemoryId};

fn push_memory_event(tx: &WriteTransaction, id: MemoryId, e: &MemoryEvent) -> Result<()> {
    let mut t = tx.open_table(MEMORY_EVENTS)?;
    let n = t
        .range((id, 0)..=(id, u64::MAX))?
        .next_back()
        .transpose()?
        .map_or(0, |(k, _)| k.value().1 + 1);
    t.insert((id, n), encode(e).as_slice())?;
    Ok(())
}

impl Store {
    /// Add memories with their embeddings (one vector per memory, or none); ids are assigned
    /// here and returned in order.
    pub fn add_memories(&self, items: Vec<(Memory, Option<Vec<u8>>)>) -> Result<Vec<Memory>> {
        self.write(move |tx| {
            let mut out = Vec::with_capacity(items.len());
            let mut mems = tx.open_table(MEMORIES)?;
            let mut vecs = tx.open_table(MEMORY_VECTORS)?;
            for (m, v) in &items {
                let mut m = m.clone();
                m.id = next_id(tx, "next_memory")?;
                mems.insert(m.id, encode(&m).as_slice())?;
                if let Some(v) = v {
                    vecs.insert(m.id, v.as_slice())?;
                }
                out.push(m);
            }
            Ok(out)
        })
    }

    pub fn memory(&self, id: MemoryId) -> Result<Option<Memory>> {
        let tx = self.read()?;
        let t = tx.open_table(MEMORIES)?;
        t.get(id)?
            .map(|v| decode("memories", v.value()))
            .transpose()
    }

    /// Change a memory's record (not its text: the index holds that) and add `event` to
    /// its history, in one transaction. None when there is no such memory.
    pub fn update_memory(
        &self,
        id: MemoryId,
        event: Option<MemoryEvent>,
        f: impl Fn(&mut Memory) + Send + 'static,
    ) -> Result<Option<Memory>> {
        self.write(move |tx| {
            let mut mems = tx.open_table(MEMORIES)?;
            let Some(mut m) = mems
                .get(id)?
                .map(|v| decode::<Memory>("memories", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let text = std::mem::take(&mut m.text);
            f(&mut m);
            m.text = text;
            mems.insert(id, encode(&m).as_slice())?;
            if let Some(e) = &event {
                push_memory_event(tx, id, e)?;
            }
            Ok(Some(m))
        })
    }

    /// Add to memories' histories, in one transaction.
    pub fn add_memory_events(&self, events: Vec<(MemoryId, MemoryEvent)>) -> Result<()> {
        self.write(move |tx| {
            for (id, e) in &events {
                push_memory_event(tx, *id, e)?;
            }
            Ok(())
        })
    }

    /// A memory's history, oldest first.
    pub fn memory_events(&self, id: MemoryId) -> Result<Vec<MemoryEvent>> {
        let tx = self.read()?;
        let t = tx.open_table(MEMORY_EVENTS)?;
        t.range((id, 0)..=(id, u64::MAX))?
            .map(|row| decode("memory_events", row?.1.value()))
            .collect()
    }

    pub fn memory_count(&self) -> Result<u64> {
        use redb::ReadableTableMetadata;
        let tx = self.read()?;
        Ok(tx.open_table(MEMORIES)?.len()?)
    }

    /// Visit every memory in id order.
    pub fn for_each_memory(&self, mut f: impl FnMut(Memory) -> Result<()>) -> Result<()> {
        let tx = self.read()?;
        let t = tx.open_table(MEMORIES)?;
        for row in t.iter()? {
            let (_, v) = row?;
            f(decode("memories", v.value())?)?;
        }
        Ok(())
    }

    /// Visit every stored memory vector (id, encoded bytes) in id order.
    pub fn for_each_memory_vector(&self, mut f: impl FnMut(MemoryId, &[u8])) -> Result<()> {
        let tx = self.read()?;
        let t = tx.open_table(MEMORY_VECTORS)?;
        for row in t.iter()? {
            let (k, v) = row?;
            f(k.value(), v.value());
        }
        Ok(())
    }
}
