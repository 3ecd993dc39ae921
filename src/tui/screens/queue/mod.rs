//! The merge queue screen: the entries waiting to land and the selected one's verdict,
//! tests and diff; the keys that approve, reject, bump, comment on a diff line and send
//! an entry back. Its state and keys; `draw` is how it looks.

pub mod state;

pub use state::*;

pub mod draw;

use crate::model::QueueState;
use crate::tui::app::{App, Layer};
use crate::tui::effect::{Effect, Load, LoadArgs};
use crate::tui::forms::{Confirm, Prompt, PromptFor};
use crate::tui::keymap::Action;
use crate::wire::{QueueDetail, QueueView};

impl App {
    /// A click on an entry selects it.
    pub(in crate::tui) fn queue_click(&mut self, i: usize, fx: &mut Vec<Effect>) {
        if i < self.queue.view.entries.len() && i != self.queue.selected {
            self.queue.selected = i;
            self.queue.detail = None;
            self.queue_detail(fx);
        }
    }

    /// The queue arrived: the same entry stays selected, wherever it moved.
    pub(in crate::tui) fn on_queue(&mut self, v: QueueView, fx: &mut Vec<Effect>) {
        let keep = self.queue.selected_entry().map(|e| e.id);
        self.queue.view = v;
        if let Some(id) = keep
            && let Some(i) = self.queue.view.entries.iter().position(|e| e.id == id)
        {
            self.queue.selected = i;
        }
        self.queue.selected = self
            .queue
            .selected
            .min(self.queue.view.entries.len().saturating_sub(1));
        if self.landed(Load::Queue) {
            self.load(Load::Queue, LoadArgs::default(), fx);
        }
        self.queue_detail(fx);
    }

    /// An entry's detail arrived: kept if that entry is still the selected one.
    pub(in crate::tui) fn on_queue_detail(&mut self, d: QueueDetail, fx: &mut Vec<Effect>) {
        let id = d.entry.id;
        let again = self.landed(Load::QueueDetail(id));
        if self.queue.selected_entry().map(|e| e.id) == Some(id) {
            if self.queue.detail.as_ref().map(|x| x.entry.id) != Some(id) {
                self.queue.file = 0;
                self.queue.scroll = 0;
            }
            self.queue.detail = Some(d);
        }
        if again {
            self.load(Load::QueueDetail(id), LoadArgs::default(), fx);
        }
    }

    pub(in crate::tui) fn queue_detail(&mut self, fx: &mut Vec<Effect>) {
        if let Some(e) = self.queue.selected_entry() {
            let id = e.id;
            self.load(Load::QueueDetail(id), LoadArgs::default(), fx);
        }
    }

    /// Where `c` comments: the path and new-file line under the diff's cursor.
    pub(in crate::tui) fn comment_target(&self) -> Result<(String, u32), String> {
        if !self.queue.diff_focus {
            return Err(
                "l moves into the diff; then c comments on the line under the cursor".into(),
            );
        }
        let files = self.diff_files();
        let Some((path, part)) = files.get(self.queue.file) else {
            return Err("no diff to comment on (yet)".into());
        };
        match new_line_numbers(part).get(self.queue.line) {
            Some(Some(n)) => Ok((path.clone(), *n)),
            _ => Err("that line is not in the new version of the file (a header or a removed line); comment on an added or kept line".into()),
        }
    }

    /// The files of the selected entry's diff, each with its part of the patch.
    pub fn diff_files(&self) -> Vec<(String, String)> {
        let Some(d) = &self.queue.detail else {
            return vec![];
        };
        split_patch(&d.patch)
    }

    pub(in crate::tui) fn queue_action(&mut self, a: Action, fx: &mut Vec<Effect>) {
        let n = self.queue.view.entries.len();
        let page = self.page.get().max(1);
        let entry = self.queue.selected_entry().cloned();
        match a {
            Action::Down | Action::Up if self.queue.diff_focus => {
                let lines = self
                    .diff_files()
                    .get(self.queue.file)
                    .map_or(0, |(_, part)| part.lines().count());
                self.queue.line = if a == Action::Down {
                    (self.queue.line + 1).min(lines.saturating_sub(1))
                } else {
                    self.queue.line.saturating_sub(1)
                };
            }
            Action::Down if self.queue.selected + 1 < n => {
                self.queue.selected += 1;
                self.queue.detail = None;
                self.queue.line = 0;
                self.queue_detail(fx);
            }
            Action::Up if self.queue.selected > 0 => {
                self.queue.selected -= 1;
                self.queue.detail = None;
                self.queue.line = 0;
                self.queue_detail(fx);
            }
            Action::FocusDiff => match self.diff_files().get(self.queue.file) {
                None => self.refuse("no diff to move in (yet)"),
                Some((_, part)) => {
                    self.queue.diff_focus = true;
                    self.queue.show_log = false;
                    // Where it was, if a comment can go there; else the first line one can.
                    let numbers = new_line_numbers(part);
                    if numbers.get(self.queue.line).is_none_or(|n| n.is_none()) {
                        self.queue.line = numbers.iter().position(|n| n.is_some()).unwrap_or(0);
                    }
                }
            },
            Action::FocusList => self.queue.diff_focus = false,
            Action::Comment => match (entry, self.comment_target()) {
                (Some(e), _) if e.state.is_finished() || e.state == QueueState::Landing => self
                    .refuse(&format!(
                        "entry {} is {}; a comment only reaches an entry still to land",
                        e.id,
                        e.state.name()
                    )),
                (Some(e), Ok((path, line))) => {
                    self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                        PromptFor::Comment {
                            entry: e.id,
                            path: path.clone(),
                            line,
                        },
                        &format!(" Comment on {path}:{line} (enter adds; R sends them back) "),
                        "",
                        &self.theme,
                    ))));
                }
                (Some(_), Err(why)) => self.refuse(&why),
                (None, _) => self.refuse("the queue is empty"),
            },
            Action::SendBack => match entry {
                Some(e) if e.state.is_finished() || e.state == QueueState::Landing => {
                    self.refuse(&format!(
                        "entry {} is {}; only an entry still to land is sent back",
                        e.id,
                        e.state.name()
                    ))
                }
                Some(e) if e.comments.is_empty() => self.refuse(&format!(
                    "entry {} has no comments yet: l moves into the diff, c comments on a line",
                    e.id
                )),
                Some(e) => {
                    let n = e.comments.len();
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!(
                            "Send entry {} `{}` back to its agent with {n} comment{}? Its ticket runs again with them.",
                            e.id,
                            e.branch,
                            if n == 1 { "" } else { "s" }
                        ),
                        on_yes: Effect::QueueAct {
                            id: e.id,
                            verb: "send-back",
                            note: None,
                        },
                    }));
                }
                None => self.refuse("the queue is empty"),
            },
            Action::PageDown => self.queue.scroll = self.queue.scroll.saturating_add(page / 2),
            Action::PageUp => self.queue.scroll = self.queue.scroll.saturating_sub(page / 2),
            Action::ToggleLog => {
                self.queue.show_log = !self.queue.show_log;
                self.queue.scroll = 0;
            }
            Action::NextFile | Action::PrevFile => {
                let files = self.diff_files().len();
                if files > 0 {
                    self.queue.file = if a == Action::NextFile {
                        (self.queue.file + 1) % files
                    } else {
                        (self.queue.file + files - 1) % files
                    };
                    self.queue.scroll = 0;
                    self.queue.line = 0;
                    self.queue.show_log = false;
                }
            }
            Action::Approve => match entry {
                Some(e) if !e.state.is_finished() => {
                    let waits = if e.state == QueueState::AwaitingApproval {
                        "It waits for you; once approved it lands"
                    } else {
                        "Approved now, it lands without stopping"
                    };
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!(
                            "Approve entry {} `{}` as {}? {waits} when its tests pass.",
                            e.id, e.branch, self.user
                        ),
                        on_yes: Effect::QueueAct {
                            id: e.id,
                            verb: "approve",
                            note: None,
                        },
                    }));
                }
                Some(e) => self.refuse(&format!(
                    "entry {} is {}; nothing to approve",
                    e.id,
                    e.state.name()
                )),
                None => self.refuse("the queue is empty"),
            },
            Action::Reject => match entry {
                Some(e) if !e.state.is_finished() => {
                    self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                        PromptFor::Reject(e.id),
                        &format!(" Reject entry {} `{}`: why? (enter sends) ", e.id, e.branch),
                        "",
                        &self.theme,
                    ))));
                }
                Some(e) => self.refuse(&format!(
                    "entry {} is {}; nothing to reject",
                    e.id,
                    e.state.name()
                )),
                None => self.refuse("the queue is empty"),
            },
            Action::Bump => match entry {
                Some(e) if !e.state.is_finished() => fx.push(Effect::QueueAct {
                    id: e.id,
                    verb: "bump",
                    note: None,
                }),
                Some(e) => self.refuse(&format!(
                    "entry {} is {}; it does not wait",
                    e.id,
                    e.state.name()
                )),
                None => self.refuse("the queue is empty"),
            },
            Action::OpenReplay => match entry.and_then(|e| e.run) {
                Some(run) => self.open_replay(run, None, fx),
                None => self.refuse("this entry came from no run"),
            },
            _ => {}
        }
    }
}
