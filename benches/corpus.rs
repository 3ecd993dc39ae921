//! A deterministic synthetic corpus for the scale benchmark: agent steps and memories that
//! read like a software factory's (paths, identifiers, commands), from a seeded generator
//! so every run and every peer sees the same data.
#![allow(dead_code)]

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

pub const MODULES: &[&str] = &[
    "auth",
    "billing",
    "cache",
    "config",
    "db",
    "http",
    "index",
    "inventory",
    "jobs",
    "ledger",
    "mail",
    "metrics",
    "orders",
    "parser",
    "payments",
    "queue",
    "router",
    "search",
    "session",
    "storage",
    "sync",
    "tenants",
    "upload",
    "users",
    "webhooks",
];
pub const FILES: &[&str] = &[
    "mod.rs",
    "client.rs",
    "handler.rs",
    "schema.rs",
    "retry.rs",
    "errors.rs",
    "model.rs",
    "tests.rs",
    "migrate.rs",
    "pool.rs",
    "limits.rs",
    "codec.rs",
];
pub const IDENTS: &[&str] = &[
    "parseConfig",
    "retry_with_backoff",
    "TokenBucket",
    "open_pool",
    "validateInput",
    "flush_batch",
    "RateLimiter",
    "decode_frame",
    "CircuitBreaker",
    "apply_migration",
    "hashPassword",
    "load_tenant",
    "SessionStore",
    "verify_signature",
    "ConnectionGuard",
    "split_batches",
    "computeChecksum",
    "write_ahead_log",
    "LeaseTable",
    "refresh_token",
    "encodeCursor",
    "normalize_email",
];
pub const TOPICS: &[&str] = &[
    "timeouts",
    "idempotency",
    "pagination",
    "rate limits",
    "schema migrations",
    "retries",
    "caching",
    "connection pooling",
    "error handling",
    "logging",
    "feature flags",
    "serialization",
    "locking",
    "batching",
    "backpressure",
    "tenancy",
    "encryption at rest",
    "webhook signatures",
    "clock skew",
];
pub const VERBS: &[&str] = &[
    "use", "avoid", "prefer", "wrap", "split", "cache", "validate", "retry", "log", "document",
];
pub const REASONS: &[&str] = &[
    "the upstream API is flaky under load",
    "tests were slow and nondeterministic",
    "it leaked connections on error",
    "two agents solved it two different ways",
    "the reviewer asked for one code path",
    "it broke the nightly migration",
    "latency p99 doubled in staging",
    "it made the diff too large to review",
];
pub const KINDS: &[&str] = &["decision", "lesson", "convention", "note", "file-context"];

pub fn path(rng: &mut Rng) -> String {
    format!("src/{}/{}", rng.pick(MODULES), rng.pick(FILES))
}

/// One memory's text and paths.
pub fn memory(rng: &mut Rng) -> (String, Vec<String>, &'static str) {
    let p = path(rng);
    let text = format!(
        "{} {} for {} in {} ({}) because {}",
        rng.pick(VERBS),
        rng.pick(IDENTS),
        rng.pick(TOPICS),
        p,
        rng.pick(IDENTS),
        rng.pick(REASONS)
    );
    (text, vec![p], rng.pick(KINDS))
}

/// A query in the words a later agent would use.
pub fn query(rng: &mut Rng) -> String {
    format!(
        "{} {} {}",
        rng.pick(TOPICS),
        rng.pick(IDENTS),
        rng.pick(MODULES)
    )
}

/// One step's kind name and searchable text.
pub fn step_text(rng: &mut Rng, i: u64) -> (u8, String) {
    match i % 5 {
        0 => (0, format!("Read {}", path(rng))),
        1 => (
            1,
            format!(
                "cargo test -p {} -- {}",
                rng.pick(MODULES),
                rng.pick(IDENTS)
            ),
        ),
        2 => (
            2,
            format!(
                "I will {} {} to fix {}",
                rng.pick(VERBS),
                rng.pick(IDENTS),
                rng.pick(TOPICS)
            ),
        ),
        3 => (
            3,
            format!(
                "edit {}: {} {}",
                path(rng),
                rng.pick(VERBS),
                rng.pick(IDENTS)
            ),
        ),
        _ => (
            4,
            format!(
                "test result: ok. {} passed; 0 failed ({})",
                rng.below(300),
                rng.pick(REASONS)
            ),
        ),
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
