//! The merge queue in the store: entries, ticket and entry transitions, the audit log.

use redb::ReadableTable;

use super::tables::*;
use super::{EntryContext, Result, Store, StoreError, decode, encode, next_id};
use crate::model::transitions::{self, EntryEvent, EntryOutcome, TicketEvent, TicketOutcome};
use crate::model::{AuditEvent, QueueEntry, QueueEntryId, Run, Ticket, TicketId};

impl Store {
    pub fn put_queue_entry(&self, entry: QueueEntry) -> Result<QueueEntry> {
        self.write(move |tx| {
            let mut e = entry.clone();
            if e.id == 0 {
                e.id = next_id(tx, "next_queue")?;
            }
            tx.open_table(QUEUE)?.insert(e.id, encode(&e).as_slice())?;
            Ok(e)
        })
    }

    pub fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        let tx = self.read()?;
        let t = tx.open_table(QUEUE)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(decode("queue", v.value())?);
        }
        Ok(out)
    }

    pub fn queue_entry(&self, id: QueueEntryId) -> Result<Option<QueueEntry>> {
        let tx = self.read()?;
        let t = tx.open_table(QUEUE)?;
        t.get(id)?.map(|v| decode("queue", v.value())).transpose()
    }

    /// Apply one ticket transition in one write transaction: the ticket and its queue
    /// entries are read, checked and written together, so a cancel and a landing cannot
    /// interleave.
    pub fn apply_ticket(&self, id: TicketId, ev: TicketEvent) -> Result<TicketOutcome> {
        self.write(move |tx| {
            let mut tickets = tx.open_table(TICKETS)?;
            let t: Ticket = match tickets.get(id)? {
                Some(v) => decode("tickets", v.value())?,
                None => {
                    return Err(StoreError::NotFound {
                        what: "ticket",
                        id: id.to_string(),
                    });
                }
            };
            let mut queue = tx.open_table(QUEUE)?;
            let mut entries: Vec<QueueEntry> = Vec::new();
            for row in queue.iter()? {
                let (_, v) = row?;
                let e: QueueEntry = decode("queue", v.value())?;
                if e.ticket == Some(id) {
                    entries.push(e);
                }
            }
            let mut out = transitions::ticket(&t, &entries, &ev).map_err(StoreError::Refused)?;
            let now = jiff::Timestamp::now();
            if out.ticket != t {
                out.ticket.updated = now;
                tickets.insert(id, encode(&out.ticket).as_slice())?;
            }
            for e in &mut out.entries {
                e.updated = Some(now);
                queue.insert(e.id, encode(&*e).as_slice())?;
            }
            Ok(out)
        })
    }

    /// Apply one entry transition in one write transaction (see [`Store::apply_entries`]).
    pub fn apply_entry(
        &self,
        id: QueueEntryId,
        cx: EntryContext,
        ev: EntryEvent,
    ) -> Result<EntryOutcome> {
        let mut v = self.apply_entries(vec![id], cx, ev)?;
        Ok(v.pop().expect("one outcome per entry"))
    }

    /// Apply the same transition to every entry of `ids` in one write transaction, all or
    /// none: the first refusal aborts the whole and is returned as
    /// `StoreError::Refused`, prefixed with nothing, so a batch lands whole or not at all.
    /// The context's attempts are read here, from the entry's ticket's runs; `paused` is
    /// asked inside the transaction, so a pause written before it is seen.
    pub fn apply_entries(
        &self,
        ids: Vec<QueueEntryId>,
        cx: EntryContext,
        ev: EntryEvent,
    ) -> Result<Vec<EntryOutcome>> {
        self.write(move |tx| {
            let mut queue = tx.open_table(QUEUE)?;
            let mut tickets = tx.open_table(TICKETS)?;
            let runs = tx.open_table(RUNS)?;
            let paused = (cx.paused)();
            let now = jiff::Timestamp::now();
            let mut outs = Vec::with_capacity(ids.len());
            for id in &ids {
                let e: QueueEntry = match queue.get(*id)? {
                    Some(v) => decode("queue", v.value())?,
                    None => {
                        return Err(StoreError::NotFound {
                            what: "queue entry",
                            id: id.to_string(),
                        });
                    }
                };
                let t: Option<Ticket> = match e.ticket {
                    Some(t) => tickets
                        .get(t)?
                        .map(|v| decode("tickets", v.value()))
                        .transpose()?,
                    None => None,
                };
                let mut states = Vec::new();
                for r in t.iter().flat_map(|t| &t.runs) {
                    if let Some(v) = runs.get(*r)? {
                        states.push(decode::<Run>("runs", v.value())?.state);
                    }
                }
                let context = transitions::Context {
                    attempts: crate::model::Attempts::of(states),
                    max_attempts: cx.max_attempts,
                    paused,
                };
                let mut out = transitions::entry(&e, t.as_ref(), &context, &ev)
                    .map_err(StoreError::Refused)?;
                if out.entry != e {
                    out.entry.updated = Some(now);
                    queue.insert(*id, encode(&out.entry).as_slice())?;
                }
                if let (Some(mut t), Some(state)) = (t, out.ticket)
                    && t.state != state
                {
                    t.state = state;
                    t.updated = now;
                    tickets.insert(t.id, encode(&t).as_slice())?;
                }
                outs.push(out);
            }
            Ok(outs)
        })
    }

    pub fn append_audit(&self, event: AuditEvent) -> Result<()> {
        self.write(move |tx| {
            let id = next_id(tx, "next_audit")?;
            tx.open_table(AUDIT)?
                .insert(id, encode(&event).as_slice())?;
            Ok(())
        })
    }

    pub fn audit_log(&self) -> Result<Vec<AuditEvent>> {
        let tx = self.read()?;
        let t = tx.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(decode("audit", v.value())?);
        }
        Ok(out)
    }
}
