//! Tickets to runs: priority, concurrency, retries, cancel, leases. Arrives with the
//! factory runtime (issue 3).
