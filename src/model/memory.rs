//! Memories: decisions and lessons kept across runs, who wrote them and their history.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{MemoryId, RunId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    Decision,
    Lesson,
    Convention,
    Note,
    FileContext,
}

impl MemoryKind {
    pub const ALL: [MemoryKind; 5] = [
        MemoryKind::Decision,
        MemoryKind::Lesson,
        MemoryKind::Convention,
        MemoryKind::Note,
        MemoryKind::FileContext,
    ];
    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::Decision => "decision",
            MemoryKind::Lesson => "lesson",
            MemoryKind::Convention => "convention",
            MemoryKind::Note => "note",
            MemoryKind::FileContext => "file-context",
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for MemoryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemoryKind::ALL
            .into_iter()
            .find(|k| k.name() == s || (s == "file_context" && *k == MemoryKind::FileContext))
            .ok_or_else(|| {
                format!(
                    "unknown memory kind `{s}`; use one of: decision, lesson, convention, note, file-context"
                )
            })
    }
}

/// Who wrote a memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Author {
    Human { name: String },
    Agent { name: String },
}

impl Author {
    pub fn name(&self) -> &str {
        match self {
            Author::Human { name } | Author::Agent { name } => name,
        }
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Author::Human { name } => write!(f, "human:{name}"),
            Author::Agent { name } => write!(f, "agent:{name}"),
        }
    }
}

/// Where a memory came from in the traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    pub run: RunId,
    pub step: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: MemoryId,
    pub kind: MemoryKind,
    pub text: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub author: Author,
    #[serde(default)]
    pub source: Option<StepRef>,
    pub ts: Timestamp,
    /// An opaque reference given at import, returned unchanged by search.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// How many times what it records happened: a failure that recurs raises the count of
    /// its lesson rather than writing the lesson again.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub seen: u32,
    /// A run on its paths that landed after receiving it: the lesson held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<RunId>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Something that happened to a memory, kept in its history (`memory show`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryEvent {
    pub ts: Timestamp,
    #[serde(flatten)]
    pub what: MemoryEventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MemoryEventKind {
    /// Written, by a run's step or by hand.
    Written {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<StepRef>,
    },
    /// The same failure happened again, in this run.
    Repeated { source: StepRef },
    /// Handed to a run in its context pack, and why.
    Recalled { run: RunId, why: String },
    /// A run that received it landed on its paths.
    Confirmed { run: RunId },
}

impl MemoryEventKind {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            MemoryEventKind::Written { source: Some(s) } => {
                format!("written from run {} step {}", s.run, s.step)
            }
            MemoryEventKind::Written { source: None } => "written".into(),
            MemoryEventKind::Repeated { source } => format!(
                "the same failure again in run {} step {}",
                source.run, source.step
            ),
            MemoryEventKind::Recalled { run, why } => format!("recalled for run {run} ({why})"),
            MemoryEventKind::Confirmed { run } => {
                format!("confirmed: run {run} received it and landed")
            }
        }
    }
}
