//! The replay screen's state: the run, its outline, the cursor and the steps cached.

use super::cursor::Cursor;
use crate::model::{RunId, Step};
use crate::wire::OutlineRow;
use std::collections::HashMap;

/// Rows of an outline fetched at once: the first screenful arrives fast, the rest follow.
pub const OUTLINE_CHUNK: u64 = 25_000;

/// Whole steps kept for replay's detail pane.
pub(super) const STEP_CACHE: usize = 256;

/// Playback speeds, steps a second.
pub const SPEEDS: [u32; 7] = [1, 2, 5, 10, 25, 50, 100];

#[derive(Default)]
pub struct ReplayState {
    /// The run on screen; None shows the run list.
    pub run: Option<RunId>,
    pub pick: usize,
    pub rows: Vec<OutlineRow>,
    pub cursor: Cursor,
    /// The outline is whole (for a live run: up to what the last event said).
    pub outline_done: bool,
    pub steps: HashMap<u64, Step>,
    step_order: Vec<u64>,
    pub playing: bool,
    pub speed: usize,
    pub search: String,
    pub hits: Vec<u64>,
    pub show_file: bool,
    pub scroll: u16,
    /// The step to select once the outline reaches it (a jump from memory).
    pub pending_jump: Option<u64>,
    /// Files as they were after a step (by the step), or why not.
    pub files: HashMap<u64, Result<crate::wire::FileAtStep, String>>,
    pub(super) file_loading: Option<u64>,
}

impl ReplayState {
    /// No run open yet, playback at its default pace.
    pub fn new() -> ReplayState {
        ReplayState {
            speed: 2,
            ..Default::default()
        }
    }

    pub(in crate::tui) fn open(&mut self, run: RunId) {
        *self = ReplayState {
            run: Some(run),
            pick: self.pick,
            speed: 2,
            ..Default::default()
        };
    }

    pub fn at_seq(&self) -> Option<u64> {
        self.rows.get(self.cursor.at).map(|r| r.seq)
    }

    pub(in crate::tui) fn remember(&mut self, s: Step) {
        if !self.steps.contains_key(&s.seq) {
            self.step_order.push(s.seq);
        }
        self.steps.insert(s.seq, s);
        while self.step_order.len() > STEP_CACHE {
            let old = self.step_order.remove(0);
            self.steps.remove(&old);
        }
    }

    /// The tool result answering the tool call at `seq`, if the outline has it near.
    pub fn result_of(&self, seq: u64) -> Option<u64> {
        let at = self.rows.binary_search_by_key(&seq, |r| r.seq).ok()?;
        self.rows[at + 1..]
            .iter()
            .take(64)
            .find(|r| r.parent == Some(seq))
            .map(|r| r.seq)
    }
}
