//! Where a reviewer is in a run, and where each replay key takes them: the next or
//! previous step, file edit or error, the first or last step, a mark to come back to.
//! Pure: it works over the run's step kinds (one byte each, so a 100,000-step run is 100
//! KB and every jump is a scan of memory, not a store read); the screen loads the step
//! the cursor lands on.

use crate::model::StepKind;
use crate::tui::keymap::Action;

/// What replay navigation needs to know of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Edit,
    Error,
    Other,
}

impl Mark {
    /// An error is an error step, a failed tool result or a command with a non-zero exit.
    pub fn of(kind: &StepKind) -> Mark {
        Mark::from_outline(kind.name(), kind.is_error())
    }

    /// From what a run's outline says of a step: its kind name and error flag.
    pub fn from_outline(kind: &str, error: bool) -> Mark {
        if kind == "file_edit" {
            Mark::Edit
        } else if error {
            Mark::Error
        } else {
            Mark::Other
        }
    }
}

/// A replay key's meaning (the keymap's action names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    NextStep,
    PrevStep,
    NextEdit,
    PrevEdit,
    NextError,
    First,
    Last,
    SetMark,
    ToMark,
}

impl Move {
    /// From a keymap action name.
    pub fn from_action(action: Action) -> Option<Move> {
        Some(match action {
            Action::NextStep => Move::NextStep,
            Action::PrevStep => Move::PrevStep,
            Action::NextEdit => Move::NextEdit,
            Action::PrevEdit => Move::PrevEdit,
            Action::NextError => Move::NextError,
            Action::First => Move::First,
            Action::Last => Move::Last,
            Action::Mark => Move::SetMark,
            Action::ToMark => Move::ToMark,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    marks: Vec<Mark>,
    pub at: usize,
    pub mark: Option<usize>,
}

impl Cursor {
    pub fn new(marks: Vec<Mark>) -> Cursor {
        Cursor {
            marks,
            at: 0,
            mark: None,
        }
    }

    /// A live run grew: new steps join; the cursor stays where it is.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Mark>) {
        self.marks.extend(more);
    }

    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Apply a move; returns whether the cursor moved (a miss, like "no later error",
    /// leaves it and the screen says so).
    pub fn apply(&mut self, m: Move) -> bool {
        let last = self.marks.len().saturating_sub(1);
        let to = match m {
            Move::NextStep => (self.at < last).then(|| self.at + 1),
            Move::PrevStep => self.at.checked_sub(1),
            Move::NextEdit => self.find_after(Mark::Edit),
            Move::PrevEdit => self.find_before(Mark::Edit),
            Move::NextError => self.find_after(Mark::Error),
            Move::First => Some(0),
            Move::Last => Some(last),
            Move::SetMark => {
                self.mark = Some(self.at);
                return false;
            }
            Move::ToMark => self.mark,
        };
        match to {
            Some(t) if t != self.at && t < self.marks.len() => {
                self.at = t;
                true
            }
            _ => false,
        }
    }

    fn find_after(&self, want: Mark) -> Option<usize> {
        self.marks
            .get(self.at + 1..)?
            .iter()
            .position(|m| *m == want)
            .map(|i| self.at + 1 + i)
    }

    fn find_before(&self, want: Mark) -> Option<usize> {
        self.marks[..self.at.min(self.marks.len())]
            .iter()
            .rposition(|m| *m == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keymap::{Key, Keymap, Lookup};

    /// Type `keys` (space-separated, as in the keymap) on the replay screen.
    fn type_keys(c: &mut Cursor, keys: &str) {
        let km = Keymap::builtin();
        let mut pending = Vec::new();
        for k in keys.split_whitespace() {
            pending.push(Key::parse(k).unwrap());
            match km.lookup("replay", &pending) {
                Lookup::Action(a) => {
                    if let Some(m) = Move::from_action(a) {
                        c.apply(m);
                    }
                    pending.clear();
                }
                Lookup::Prefix => {}
                Lookup::None => pending.clear(),
            }
        }
    }

    fn run() -> Cursor {
        use Mark::*;
        // 0 1 2 3(edit) 4 5(error) 6(edit) 7 8(error) 9
        Cursor::new(vec![
            Other, Other, Other, Edit, Other, Error, Edit, Other, Error, Other,
        ])
    }

    #[test]
    fn replay_keys_move_the_cursor() {
        let mut c = run();
        type_keys(&mut c, "j j");
        assert_eq!(c.at, 2);
        type_keys(&mut c, "J");
        assert_eq!(c.at, 3, "next file edit");
        type_keys(&mut c, "e");
        assert_eq!(c.at, 5, "next error");
        type_keys(&mut c, "m G");
        assert_eq!((c.at, c.mark), (9, Some(5)));
        type_keys(&mut c, "K");
        assert_eq!(c.at, 6, "previous edit");
        type_keys(&mut c, "'");
        assert_eq!(c.at, 5, "back to the mark");
        type_keys(&mut c, "g g");
        assert_eq!(c.at, 0);
        type_keys(&mut c, "k up p");
        assert_eq!(c.at, 0, "nothing before the first step");
        type_keys(&mut c, "G j n down e");
        assert_eq!(c.at, 9, "nothing after the last");
    }

    #[test]
    fn misses_say_so_and_an_empty_run_is_safe() {
        let mut c = run();
        c.at = 8;
        assert!(!c.apply(Move::NextError));
        assert!(!c.apply(Move::ToMark), "no mark set");
        let mut empty = Cursor::new(vec![]);
        for m in [
            Move::NextStep,
            Move::PrevStep,
            Move::NextEdit,
            Move::PrevEdit,
            Move::Last,
            Move::First,
            Move::ToMark,
        ] {
            assert!(!empty.apply(m));
        }
        empty.extend([Mark::Other, Mark::Edit]);
        assert!(empty.apply(Move::NextEdit));
        assert_eq!(empty.at, 1);
    }

    #[test]
    fn jumps_across_a_hundred_thousand_steps_are_instant() {
        let mut marks = vec![Mark::Other; 100_000];
        marks[99_998] = Mark::Error;
        let mut c = Cursor::new(marks);
        let t = std::time::Instant::now();
        assert!(c.apply(Move::NextError));
        assert!(c.apply(Move::Last));
        assert!(c.apply(Move::First));
        assert!(!c.apply(Move::PrevEdit));
        assert_eq!(c.at, 0);
        assert!(
            t.elapsed() < std::time::Duration::from_millis(50),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn errors_include_failed_commands_and_tool_results() {
        use crate::model::Payload;
        let failed = StepKind::Command {
            argv: vec!["cargo".into(), "test".into()],
            exit_code: Some(101),
            output: Payload::default(),
        };
        let passed = StepKind::Command {
            argv: vec![],
            exit_code: Some(0),
            output: Payload::default(),
        };
        let tool = StepKind::ToolResult {
            call_id: None,
            output: Payload::default(),
            is_error: true,
        };
        assert_eq!(Mark::of(&failed), Mark::Error);
        assert_eq!(Mark::of(&passed), Mark::Other);
        assert_eq!(Mark::of(&tool), Mark::Error);
    }
}
