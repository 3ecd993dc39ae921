//! Path leases: a run claims the paths (globs) it is about to change, so a second run that
//! asks for an overlapping claim is told who holds it instead of solving the same thing a
//! second way. Leases expire on their own and are released when their run ends.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::index::filter::{literal_prefix, paths_overlap};
use crate::model::RunId;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub run: RunId,
    pub agent: String,
    pub path: String,
    pub expires: Timestamp,
}

/// Another run holds an overlapping lease.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    pub wanted: String,
    pub held: Lease,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` overlaps `{}`, leased by run {} ({}) until {}",
            self.wanted, self.held.path, self.held.run, self.held.agent, self.held.expires
        )
    }
}

/// Whether two globs or paths may name a common file. Conservative: when in doubt (a
/// pattern with no literal directory, like `*.rs`) they overlap.
pub fn globs_overlap(a: &str, b: &str) -> bool {
    if paths_overlap(a, b) {
        return true;
    }
    let (pa, pb) = (literal_prefix(a), literal_prefix(b));
    let a_glob = crate::index::filter::is_glob(a);
    let b_glob = crate::index::filter::is_glob(b);
    if !a_glob && !b_glob {
        return false; // two plain paths: paths_overlap already said it all
    }
    let under = |dir: &str, other: &str| {
        dir.is_empty() || other == dir || other.starts_with(&format!("{dir}/"))
    };
    (a_glob && under(&pa, &pb)) || (b_glob && under(&pb, &pa))
}

#[derive(Clone, Debug, Default)]
pub struct LeaseTable {
    leases: Vec<Lease>,
}

impl LeaseTable {
    /// Claim every path for `run`, or none: the first conflict with another live run's
    /// lease is returned. Re-leasing a path the run already holds extends it.
    pub fn acquire(
        &mut self,
        run: RunId,
        agent: &str,
        paths: &[String],
        ttl: SignedDuration,
        now: Timestamp,
    ) -> Result<Vec<Lease>, Conflict> {
        self.expire(now);
        for p in paths {
            if let Some(held) = self
                .leases
                .iter()
                .find(|l| l.run != run && globs_overlap(&l.path, p))
            {
                return Err(Conflict {
                    wanted: p.clone(),
                    held: held.clone(),
                });
            }
        }
        let expires = now.saturating_add(ttl).unwrap_or(now);
        let mut granted = Vec::new();
        for p in paths {
            self.leases.retain(|l| !(l.run == run && l.path == *p));
            let lease = Lease {
                run,
                agent: agent.to_string(),
                path: p.clone(),
                expires,
            };
            self.leases.push(lease.clone());
            granted.push(lease);
        }
        Ok(granted)
    }

    /// Give back some of a run's leases; returns how many were held.
    pub fn release(&mut self, run: RunId, paths: &[String]) -> usize {
        let before = self.leases.len();
        self.leases
            .retain(|l| !(l.run == run && paths.contains(&l.path)));
        before - self.leases.len()
    }

    /// Give back everything a run holds (it ended).
    pub fn release_run(&mut self, run: RunId) -> usize {
        let before = self.leases.len();
        self.leases.retain(|l| l.run != run);
        before - self.leases.len()
    }

    pub fn expire(&mut self, now: Timestamp) {
        self.leases.retain(|l| l.expires > now);
    }

    /// Every live lease, for anyone to see.
    pub fn live(&self, now: Timestamp) -> Vec<Lease> {
        self.leases
            .iter()
            .filter(|l| l.expires > now)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }
    fn p(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }
    const TTL: SignedDuration = SignedDuration::from_secs(60);

    #[test]
    fn overlap_rules() {
        for (a, b, want) in [
            ("src/a.rs", "src/a.rs", true),
            ("src/a.rs", "src/b.rs", false),
            ("src/**", "src/a/b.rs", true),
            ("src/a/*.rs", "src/**", true),
            ("src/*.rs", "docs/*.md", false),
            ("*.rs", "docs/x.md", true),
            ("src", "src/a.rs", true),
            ("migrations/**", "src/db.rs", false),
        ] {
            assert_eq!(globs_overlap(a, b), want, "{a} vs {b}");
            assert_eq!(globs_overlap(b, a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn a_second_run_is_told_who_holds_the_path() {
        let mut table = LeaseTable::default();
        table
            .acquire(1, "claude", &p(&["src/store/**"]), TTL, t(0))
            .unwrap();
        let err = table
            .acquire(
                2,
                "codex",
                &p(&["docs/x.md", "src/store/writer.rs"]),
                TTL,
                t(1),
            )
            .unwrap_err();
        assert_eq!(err.held.run, 1);
        assert!(
            err.to_string().contains("leased by run 1 (claude)"),
            "{err}"
        );
        assert_eq!(
            table.live(t(1)).len(),
            1,
            "all or nothing: docs/x.md was not granted"
        );
        // The holder may extend its own lease.
        table
            .acquire(1, "claude", &p(&["src/store/**"]), TTL, t(2))
            .unwrap();
        assert_eq!(table.live(t(2)).len(), 1);
    }

    #[test]
    fn leases_expire_and_are_released() {
        let mut table = LeaseTable::default();
        table
            .acquire(1, "a", &p(&["x.rs", "y.rs"]), TTL, t(0))
            .unwrap();
        assert!(table.acquire(2, "b", &p(&["x.rs"]), TTL, t(59)).is_err());
        assert!(
            table.acquire(2, "b", &p(&["x.rs"]), TTL, t(61)).is_ok(),
            "expired"
        );
        assert_eq!(table.release(2, &p(&["x.rs"])), 1);
        table.acquire(3, "c", &p(&["z.rs"]), TTL, t(61)).unwrap();
        assert_eq!(table.release_run(3), 1);
        assert!(table.live(t(61)).is_empty());
    }
}
