//! The memory screen's state: the search, its filters and its hits.

use crate::model::MemoryKind;
use crate::wire::MemoryHit;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryFilters {
    pub kind: Option<MemoryKind>,
    pub agent: String,
    /// Only memories newer than this many hours.
    pub within_hours: Option<u32>,
    /// The filter row being edited.
    pub row: usize,
}

pub const WITHIN: [Option<u32>; 4] = [None, Some(1), Some(24), Some(24 * 7)];

#[derive(Default)]
pub struct MemoryScreen {
    pub query: ratatui_textarea::TextArea<'static>,
    pub typing: bool,
    pub hits: Vec<MemoryHit>,
    pub selected: usize,
    pub generation: u64,
    pub filters: MemoryFilters,
    pub searched: bool,
}

impl MemoryScreen {
    pub fn text(&self) -> String {
        self.query.lines().join(" ")
    }
}
