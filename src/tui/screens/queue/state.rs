//! The merge queue screen's state: the queue, the selected entry and its diff.

use crate::wire::{QueueDetail, QueueView};

#[derive(Default)]
pub struct QueueScreen {
    pub view: QueueView,
    pub selected: usize,
    pub detail: Option<QueueDetail>,
    pub show_log: bool,
    pub file: usize,
    pub scroll: u16,
    /// Keys move a cursor over the diff's lines (`l`), not over the entries.
    pub diff_focus: bool,
    /// The cursor's line in the shown file's part of the diff.
    pub line: usize,
}

impl QueueScreen {
    pub fn selected_entry(&self) -> Option<&crate::model::QueueEntry> {
        self.view.entries.get(self.selected)
    }
}

/// For each line of one file's part of a unified diff, its line number in the new
/// version of the file: None for headers and removed lines.
pub fn new_line_numbers(part: &str) -> Vec<Option<u32>> {
    let mut next: Option<u32> = None;
    part.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("@@ ") {
                // `@@ -a,b +c,d @@`: the new side starts at line c.
                next = rest
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix('+'))
                    .and_then(|w| w.split(',').next()?.parse().ok());
                return None;
            }
            let n = next?;
            match l.chars().next() {
                Some('+') | Some(' ') | None => {
                    next = Some(n + 1);
                    Some(n)
                }
                _ => None,
            }
        })
        .collect()
}

/// A unified diff cut into its files: (path, that file's part).
pub fn split_patch(patch: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    for line in patch.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest
                .trim_end()
                .rsplit_once(" b/")
                .map(|(_, b)| b.to_string())
                .unwrap_or_else(|| rest.trim_end().to_string());
            out.push((path, String::new()));
        }
        match out.last_mut() {
            Some((_, body)) => body.push_str(line),
            None if !line.trim().is_empty() => out.push(("(diff)".into(), line.to_string())),
            None => {}
        }
    }
    out
}
