//! Blocks of TCP ports for runs (`[sandbox] ports = N`): each live run gets its own
//! `N` consecutive ports, exported as `SHOPFLOOR_PORT` (the first) and `SHOPFLOOR_PORTS`
//! (`first-last`), so parallel dev servers and test databases never collide. A block is
//! held from launch until the run's process has ended, and never handed to two live runs.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use crate::model::RunId;

#[derive(Debug)]
struct Table {
    base: u16,
    size: u16,
    /// Block index -> the run holding it.
    held: BTreeMap<u32, RunId>,
}

/// The factory's port blocks. Cloning shares the table.
#[derive(Clone, Debug)]
pub struct PortBlocks {
    table: Arc<Mutex<Table>>,
}

/// A block held by a run; given back when dropped (whatever path the run ends by).
#[derive(Debug)]
pub struct Held {
    blocks: PortBlocks,
    index: u32,
    pub ports: RangeInclusive<u16>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.blocks.lock().held.remove(&self.index);
    }
}

impl Held {
    /// `SHOPFLOOR_PORT` and `SHOPFLOOR_PORTS` for the run's environment.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SHOPFLOOR_PORT".into(), self.ports.start().to_string()),
            (
                "SHOPFLOOR_PORTS".into(),
                format!("{}-{}", self.ports.start(), self.ports.end()),
            ),
        ]
    }
}

impl PortBlocks {
    /// Blocks of `size` ports from `base` up to 65535.
    pub fn new(base: u16, size: u16) -> PortBlocks {
        PortBlocks {
            table: Arc::new(Mutex::new(Table {
                base,
                size,
                held: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many runs can hold a block at once.
    pub fn capacity(&self) -> u32 {
        let t = self.lock();
        if t.size == 0 {
            return 0;
        }
        (u32::from(u16::MAX) - u32::from(t.base) + 1) / u32::from(t.size)
    }

    /// The lowest free block for `run`; None when ports are off or every block is held.
    pub fn take(&self, run: RunId) -> Option<Held> {
        let mut t = self.lock();
        if t.size == 0 {
            return None;
        }
        let cap = (u32::from(u16::MAX) - u32::from(t.base) + 1) / u32::from(t.size);
        let index = (0..cap).find(|i| !t.held.contains_key(i))?;
        t.held.insert(index, run);
        let first = u32::from(t.base) + index * u32::from(t.size);
        let last = first + u32::from(t.size) - 1;
        Some(Held {
            blocks: self.clone(),
            index,
            ports: first as u16..=last as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sandbox::DEFAULT_PORT_BASE;

    #[test]
    fn blocks_never_overlap_under_many_threads_and_come_back_when_dropped() {
        let blocks = PortBlocks::new(DEFAULT_PORT_BASE, 10);
        let seen = Arc::new(Mutex::new(Vec::<(u16, u16, u32)>::new()));
        let threads: Vec<_> = (0..16u64)
            .map(|run| {
                let (blocks, seen) = (blocks.clone(), seen.clone());
                std::thread::spawn(move || {
                    for round in 0..200u32 {
                        let held = blocks.take(run).expect("a block is free");
                        // While held, no other live run's block touches this one.
                        {
                            let mut s = seen.lock().unwrap();
                            for (a, b, _) in s.iter() {
                                assert!(
                                    *b < *held.ports.start() || *a > *held.ports.end(),
                                    "{a}-{b} overlaps {:?}",
                                    held.ports
                                );
                            }
                            s.push((*held.ports.start(), *held.ports.end(), round));
                        }
                        std::thread::yield_now();
                        seen.lock()
                            .unwrap()
                            .retain(|(a, _, _)| a != held.ports.start());
                        drop(held);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // All given back: the first block is free again.
        assert_eq!(*blocks.take(99).unwrap().ports.start(), DEFAULT_PORT_BASE);
    }

    #[test]
    fn the_last_block_fits_below_65536_and_off_means_none() {
        let blocks = PortBlocks::new(65530, 3);
        assert_eq!(blocks.capacity(), 2);
        let a = blocks.take(1).unwrap();
        let b = blocks.take(2).unwrap();
        assert_eq!(
            (a.ports.clone(), b.ports.clone()),
            (65530..=65532, 65533..=65535)
        );
        assert!(blocks.take(3).is_none(), "every block held");
        assert_eq!(
            b.env(),
            [
                ("SHOPFLOOR_PORT".to_string(), "65533".to_string()),
                ("SHOPFLOOR_PORTS".to_string(), "65533-65535".to_string())
            ]
        );
        assert!(PortBlocks::new(DEFAULT_PORT_BASE, 0).take(1).is_none());
    }
}
