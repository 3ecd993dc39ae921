//! How each agent CLI is launched and how its output becomes Steps. Arrives with the
//! factory runtime (issue 3); the parsers it streams through live in `trace::import`.
