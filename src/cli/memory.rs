//! `shopfloor memory ...`: write and recall the fleet's shared memory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use jiff::Timestamp;
use shopfloor::model::{Author, MemoryKind};
use shopfloor::wire::{MemorySearch, MemoryWrite};

use super::Ctx;
use super::output::{clip, print_json, print_list, say, when};

#[derive(Subcommand, Debug)]
pub enum MemoryCmd {
    /// Write a memory by hand
    Add {
        text: String,
        /// decision, lesson, convention, note or file-context
        #[arg(long, default_value = "note", value_parser = parse_kind)]
        kind: MemoryKind,
        /// Paths it is about
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        paths: Vec<String>,
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        tags: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Recall memories: BM25, embeddings, path overlap and recency, fused
    Search {
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Only these kinds (repeat or comma-separate)
        #[arg(long, value_parser = parse_kind, num_args = 1.., value_delimiter = ',')]
        kind: Vec<MemoryKind>,
        /// Only memories written by this agent or person
        #[arg(long)]
        agent: Option<String>,
        /// Only memories made from this run
        #[arg(long)]
        run: Option<u64>,
        /// Paths you are working on: memories about them rank higher
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        paths: Vec<String>,
        /// Only memories about --paths
        #[arg(long, requires = "paths")]
        paths_only: bool,
        /// Only memories newer than this: an RFC 3339 time or an age like 7d, 12h, 30m
        #[arg(long, value_parser = super::parse_since)]
        since: Option<Timestamp>,
        /// Prefer newer memories
        #[arg(long)]
        recent: bool,
        #[arg(long)]
        json: bool,
    },
    /// One memory whole, with its history: written (from which run and step), recalled
    /// by which runs and why, the same failure again, confirmed by a landing.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Import memories from JSON Lines: {"text": .., "kind"?, "paths"?, "tags"?, "ts"?, "ref"?}
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn parse_kind(s: &str) -> Result<MemoryKind, String> {
    s.parse()
}

fn human() -> Author {
    Author::Human {
        name: shopfloor::api::auth::local_user(),
    }
}

pub fn run(ctx: &Ctx, cmd: MemoryCmd) -> Result<()> {
    match cmd {
        MemoryCmd::Add {
            text,
            kind,
            paths,
            tags,
            json,
        } => {
            let m = ctx.backend()?.add_memory(MemoryWrite {
                text,
                kind,
                paths,
                tags,
                author: human(),
            })?;
            if json {
                return print_json(&m);
            }
            say!("memory {} added ({})", m.id, m.kind);
            Ok(())
        }
        MemoryCmd::Search {
            query,
            limit,
            kind,
            agent,
            run,
            paths,
            paths_only,
            since,
            recent,
            json,
        } => {
            let hits = ctx.backend()?.search_memory(MemorySearch {
                text: query,
                limit,
                kinds: kind,
                agent,
                run,
                paths,
                paths_only,
                since,
                recent,
            })?;
            print_list(
                json,
                &hits,
                &["ID", "KIND", "SCORE", "FOUND BY", "AUTHOR", "WHEN", "TEXT"],
                |h| {
                    let legs: Vec<&str> = h.legs.iter().map(|l| l.name()).collect();
                    let m = &h.memory;
                    let mut text = m.text.clone();
                    if !m.paths.is_empty() {
                        text = format!("{text} [{}]", m.paths.join(", "));
                    }
                    vec![
                        m.id.to_string(),
                        m.kind.to_string(),
                        format!("{:.3}", h.score),
                        legs.join("+"),
                        m.author.name().to_string(),
                        when(m.ts),
                        clip(&text, 90),
                    ]
                },
                "no memories match",
            )
        }
        MemoryCmd::Show { id, json } => {
            let d = ctx.backend()?.memory(id)?;
            if json {
                return print_json(&d);
            }
            let m = &d.memory;
            say!(
                "memory {} · {} · by {} · {}",
                m.id,
                m.kind,
                m.author.name(),
                when(m.ts)
            );
            if m.seen > 1 {
                say!("seen {} times", m.seen);
            }
            if let Some(run) = m.confirmed {
                say!("confirmed by run {run}, which received it and landed");
            }
            if !m.paths.is_empty() {
                say!("paths: {}", m.paths.join(", "));
            }
            if !m.tags.is_empty() {
                say!("tags: {}", m.tags.join(", "));
            }
            say!("");
            say!("{}", m.text.trim_end());
            say!("");
            say!("history:");
            for e in &d.history {
                say!("  {}  {}", when(e.ts), e.what.describe());
            }
            Ok(())
        }
        MemoryCmd::Import { file, json } => {
            let backend = ctx.backend()?;
            let jsonl = std::fs::read(&file).with_context(|| {
                format!("cannot open {}; pass a JSON Lines file", file.display())
            })?;
            let summary = backend.import_memory(jsonl, human().name())?;
            if json {
                return print_json(&summary);
            }
            say!(
                "imported {} memories from {}",
                summary.imported,
                file.display()
            );
            for e in &summary.errors {
                say!("  line {}: {}", e.line, e.message);
            }
            if !summary.errors.is_empty() {
                say!(
                    "  {} lines skipped; fix them and import those lines again",
                    summary.errors.len()
                );
            }
            Ok(())
        }
    }
}
