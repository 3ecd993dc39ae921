//! What recall's filters and the path and recency legs read about every memory, kept in
//! memory so they never touch the store. Filter fields are packed into one small record a
//! memory in a vector indexed by id (ids are dense counters), because the dense leg checks
//! the filter for every vector it scans: at 100k memories, chasing a heap-allocated
//! `Memory` per check cost ~8 ms a query; the packed scan costs well under one.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::index::MemoryFilter;
use crate::model::{Memory, MemoryId, MemoryKind};

#[derive(Clone, Copy, Default)]
struct Slim {
    live: bool,
    has_paths: bool,
    /// Position in `MemoryKind::ALL`.
    kind: u8,
    author: u32,
    /// 0 when the memory has no source run (run ids start at 1).
    run: u64,
    ts: i64,
}

#[derive(Default)]
pub struct Catalog {
    slim: Vec<Slim>,
    /// Memories without their text, for paths and the full filter.
    full: HashMap<MemoryId, Memory>,
    authors: HashMap<String, u32>,
}

fn kind_bit(k: MemoryKind) -> u8 {
    MemoryKind::ALL.iter().position(|x| *x == k).unwrap_or(0) as u8
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.full.len()
    }

    pub fn insert(&mut self, m: &Memory) {
        let next = self.authors.len() as u32;
        let author = *self
            .authors
            .entry(m.author.name().to_string())
            .or_insert(next);
        let i = m.id as usize;
        if self.slim.len() <= i {
            self.slim.resize(i + 1, Slim::default());
        }
        self.slim[i] = Slim {
            live: true,
            has_paths: !m.paths.is_empty(),
            kind: kind_bit(m.kind),
            author,
            run: m.source.map(|s| s.run).unwrap_or(0),
            ts: m.ts.as_microsecond(),
        };
        self.full.insert(
            m.id,
            Memory {
                text: String::new(),
                ..m.clone()
            },
        );
    }

    /// The oldest live memory carrying `tag`.
    pub fn find_tag(&self, tag: &str) -> Option<MemoryId> {
        self.full
            .values()
            .filter(|m| m.tags.iter().any(|t| t == tag))
            .map(|m| m.id)
            .filter(|id| self.slim.get(*id as usize).is_some_and(|s| s.live))
            .min()
    }

    pub fn ids(&self) -> impl Iterator<Item = MemoryId> + '_ {
        self.full.keys().copied()
    }

    /// The filter, compiled against this catalog.
    pub fn compile<'a>(&'a self, filter: &'a MemoryFilter) -> Compiled<'a> {
        let mut kinds = 0u8;
        for k in &filter.kinds {
            kinds |= 1 << kind_bit(*k);
        }
        Compiled {
            catalog: self,
            filter,
            kinds,
            // An author nobody has used matches nothing.
            author: filter
                .agent
                .as_ref()
                .map(|a| self.authors.get(a).copied().unwrap_or(u32::MAX)),
            since: filter.since.map(Timestamp::as_microsecond),
        }
    }

    /// Memories passing `keep` that have paths, without their text.
    pub fn with_paths<'a>(
        &'a self,
        keep: &'a Compiled<'a>,
    ) -> impl Iterator<Item = &'a Memory> + 'a {
        self.slim
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live && s.has_paths)
            .filter(move |(i, _)| keep.keep(*i as MemoryId))
            .filter_map(|(i, _)| self.full.get(&(i as MemoryId)))
    }

    /// The `n` newest memories passing `keep`, newest first.
    pub fn newest(&self, keep: &Compiled<'_>, n: usize) -> Vec<MemoryId> {
        let mut by_time: Vec<(i64, MemoryId)> = self
            .slim
            .iter()
            .enumerate()
            .filter(|(i, s)| s.live && keep.keep(*i as MemoryId))
            .map(|(i, s)| (s.ts, i as MemoryId))
            .collect();
        let n = n.min(by_time.len());
        if n == 0 {
            return Vec::new();
        }
        by_time.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
        by_time.truncate(n);
        by_time.sort_by(|a, b| b.cmp(a));
        by_time.into_iter().map(|t| t.1).collect()
    }
}

pub struct Compiled<'a> {
    catalog: &'a Catalog,
    filter: &'a MemoryFilter,
    kinds: u8,
    author: Option<u32>,
    since: Option<i64>,
}

impl Compiled<'_> {
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    pub fn keep(&self, id: MemoryId) -> bool {
        let Some(s) = self.catalog.slim.get(id as usize) else {
            return false;
        };
        s.live
            && (self.kinds == 0 || self.kinds & (1 << s.kind) != 0)
            && self.author.is_none_or(|a| a == s.author)
            && self.filter.run.is_none_or(|r| r == s.run)
            && self.since.is_none_or(|t| s.ts >= t)
            && (self.filter.paths.is_empty()
                || self
                    .catalog
                    .full
                    .get(&id)
                    .is_some_and(|m| self.filter.matches(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Author, StepRef};

    #[test]
    fn compiled_filter_agrees_with_the_plain_filter() {
        let mut cat = Catalog::default();
        let mut all = Vec::new();
        for i in 1..=40u64 {
            let m = Memory {
                id: i,
                kind: MemoryKind::ALL[i as usize % 5],
                text: "t".into(),
                paths: if i % 3 == 0 {
                    vec![format!("src/m{}/x.rs", i % 2)]
                } else {
                    vec![]
                },
                tags: vec![],
                author: Author::Agent {
                    name: ["a", "b", "c"][i as usize % 3].into(),
                },
                source: (i % 4 == 0).then_some(StepRef {
                    run: i % 8,
                    step: 0,
                }),
                ts: Timestamp::from_second(i as i64).unwrap(),
                reference: None,
                seen: 1,
                confirmed: None,
            };
            cat.insert(&m);
            all.push(m);
        }
        let filters = [
            MemoryFilter::default(),
            MemoryFilter {
                kinds: vec![MemoryKind::Lesson, MemoryKind::Note],
                ..Default::default()
            },
            MemoryFilter {
                agent: Some("b".into()),
                ..Default::default()
            },
            MemoryFilter {
                agent: Some("nobody".into()),
                ..Default::default()
            },
            MemoryFilter {
                run: Some(4),
                ..Default::default()
            },
            MemoryFilter {
                since: Some(Timestamp::from_second(30).unwrap()),
                ..Default::default()
            },
            MemoryFilter {
                paths: vec!["src/m1".into()],
                kinds: vec![MemoryKind::Note],
                ..Default::default()
            },
        ];
        for f in &filters {
            let c = cat.compile(f);
            for m in &all {
                assert_eq!(c.keep(m.id), f.matches(m), "{f:?} on {}", m.id);
            }
            assert!(!c.keep(0) && !c.keep(999));
        }
        let any = MemoryFilter::default();
        assert_eq!(cat.newest(&cat.compile(&any), 3), vec![40, 39, 38]);
        assert_eq!(cat.with_paths(&cat.compile(&any)).count(), 13);
    }
}
