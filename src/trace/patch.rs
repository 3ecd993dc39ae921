//! Unified diffs: made from before/after texts, rendered from Claude Code's structured
//! hunks, and applied back (for replay when only a base and a patch are known).

use serde_json::Value;

/// Changed lines (old and new, after the lines both texts start and end with) up to which a
/// diff searches for the fewest changes. Myers' search takes time growing with the square
/// of them in the worst case (10,000 lines, about a second); beyond, one hunk replaces the
/// whole changed middle, which applies just as well.
const MAX_SEARCHED_LINES: usize = 10_000;

/// A unified diff of `before` → `after` (None before = created, None after = deleted).
pub fn make(path: &str, before: Option<&str>, after: Option<&str>) -> String {
    let mut out = header(path, before.is_some(), after.is_some());
    out.push_str(&hunks(before.unwrap_or(""), after.unwrap_or("")));
    out
}

/// The `---`/`+++` lines of a diff of `path` (`/dev/null` for a side that does not exist).
pub fn header(path: &str, before: bool, after: bool) -> String {
    let side = |exists: bool, prefix: &str| {
        if exists {
            format!("{prefix}{}", slash(path))
        } else {
            "/dev/null".into()
        }
    };
    format!("--- {}\n+++ {}\n", side(before, "a"), side(after, "b"))
}

/// The hunks of a unified diff of `old` → `new`, without a header.
pub fn hunks(old: &str, new: &str) -> String {
    match Middle::of(old, new) {
        m if m.old.len() + m.new.len() > MAX_SEARCHED_LINES => m.one_hunk(),
        _ => similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(CONTEXT)
            .to_string(),
    }
}

/// Context lines around a change.
const CONTEXT: usize = 3;

/// Two texts as lines (newlines kept): what they start and end with alike, and the
/// changed middle of each.
struct Middle<'a> {
    a: Vec<&'a str>,
    b: Vec<&'a str>,
    /// Lines both start with, and both end with.
    head: usize,
    tail: usize,
    old: std::ops::Range<usize>,
    new: std::ops::Range<usize>,
}

impl<'a> Middle<'a> {
    fn of(old: &'a str, new: &'a str) -> Middle<'a> {
        let a: Vec<&str> = old.split_inclusive('\n').collect();
        let b: Vec<&str> = new.split_inclusive('\n').collect();
        let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let tail = a[head..]
            .iter()
            .rev()
            .zip(b[head..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let (old, new) = (head..a.len() - tail, head..b.len() - tail);
        Middle {
            a,
            b,
            head,
            tail,
            old,
            new,
        }
    }

    /// One hunk that removes the old middle and adds the new, with context around it.
    fn one_hunk(&self) -> String {
        if self.old.is_empty() && self.new.is_empty() {
            return String::new();
        }
        let before = self.head.min(CONTEXT);
        let after = self.tail.min(CONTEXT);
        let old = self.old.start - before..self.old.end + after;
        let new = self.new.start - before..self.new.end + after;
        // A range of no lines is named by the line before it, as diff does.
        let range = |r: &std::ops::Range<usize>| match r.len() {
            0 => format!("{},0", r.start),
            1 => format!("{}", r.start + 1),
            n => format!("{},{n}", r.start + 1),
        };
        let mut out = format!("@@ -{} +{} @@\n", range(&old), range(&new));
        let mut line = |mark: char, text: &str| {
            out.push(mark);
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        };
        for l in &self.a[old.start..self.old.start] {
            line(' ', l);
        }
        for l in &self.a[self.old.clone()] {
            line('-', l);
        }
        for l in &self.b[self.new.clone()] {
            line('+', l);
        }
        for l in &self.a[self.old.end..old.end] {
            line(' ', l);
        }
        out
    }
}

fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// Render Claude Code's `structuredPatch` (hunks with `oldStart`, `oldLines`, `newStart`,
/// `newLines`, `lines`) as a unified diff.
pub fn render_structured(path: &str, hunks: &[Value]) -> String {
    let mut out = format!("--- a{p}\n+++ b{p}\n", p = slash(path));
    for h in hunks {
        let n = |k: &str| h.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            n("oldStart"),
            n("oldLines"),
            n("newStart"),
            n("newLines")
        ));
        for l in h
            .get("lines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(l) = l.as_str() {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// Whether a patch deletes its file.
pub fn is_deletion(patch: &str) -> bool {
    patch.lines().any(|l| l == "+++ /dev/null")
}

/// A line of a file: its text and whether a newline ends it.
type Line<'a> = (&'a str, bool);

fn split(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|l| match l.strip_suffix('\n') {
            Some(t) => (t, true),
            None => (l, false),
        })
        .collect()
}

struct Hunk<'a> {
    old_start: usize,
    old: Vec<Line<'a>>,
    new: Vec<Line<'a>>,
}

fn parse_hunks(patch: &str) -> Option<Vec<Hunk<'_>>> {
    let mut hunks: Vec<Hunk> = Vec::new();
    let lines: Vec<&str> = patch.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(rest) = l.strip_prefix("@@ -") {
            let old_start = rest
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse::<usize>().ok())?;
            hunks.push(Hunk {
                old_start,
                old: Vec::new(),
                new: Vec::new(),
            });
        } else if let Some(h) = hunks.last_mut()
            && !l.starts_with("--- ")
            && !l.starts_with("+++ ")
        {
            // `\ No newline at end of file` applies to the line before it.
            let nl = lines.get(i + 1).is_none_or(|n| !n.starts_with('\\'));
            match l.chars().next() {
                Some(' ') => {
                    h.old.push((&l[1..], nl));
                    h.new.push((&l[1..], nl));
                }
                Some('-') => h.old.push((&l[1..], nl)),
                Some('+') => h.new.push((&l[1..], nl)),
                Some('\\') => {}
                None => {
                    h.old.push(("", true));
                    h.new.push(("", true));
                }
                _ => return None,
            }
        }
        i += 1;
    }
    Some(hunks)
}

/// Apply a unified diff to `base`. Hunks are located by their content near the stated
/// line (any offset), so a patch made from a snippet still applies. None if a hunk does
/// not match.
pub fn apply(base: &str, patch: &str) -> Option<String> {
    let hunks = parse_hunks(patch)?;
    if hunks.is_empty() {
        return None;
    }
    let mut lines = split(base);
    let mut cursor = 0usize;
    for h in hunks {
        let want = h.old_start.saturating_sub(1);
        let matches_at = |at: usize, lines: &[Line]| {
            at + h.old.len() <= lines.len()
                && h.old.iter().zip(&lines[at..]).all(|(a, b)| a.0 == b.0)
        };
        let at = if matches_at(want.max(cursor).min(lines.len()), &lines) {
            want.max(cursor).min(lines.len())
        } else {
            (cursor..=lines.len()).find(|&at| matches_at(at, &lines))?
        };
        let replaced = at + h.old.len();
        // Keep the base's newline state for a last context line the patch did not mark.
        let new: Vec<Line> = h.new.clone();
        lines.splice(at..replaced, new.iter().copied());
        cursor = at + new.len();
    }
    let mut out = String::with_capacity(base.len());
    for (t, nl) in lines {
        out.push_str(t);
        if nl {
            out.push('\n');
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_patch_applies_back() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nB\nc\nd\ne\nf\ng\nh\nnew\n";
        let p = make("src/x.rs", Some(before), Some(after));
        assert!(p.starts_with("--- a/src/x.rs\n+++ b/src/x.rs\n@@"), "{p}");
        assert_eq!(apply(before, &p).as_deref(), Some(after));
        let p = make("x", Some("one"), Some("two"));
        assert_eq!(apply("one", &p).as_deref(), Some("two"));
    }

    #[test]
    fn creation_and_deletion() {
        let p = make("/tmp/f", None, Some("Hello World"));
        assert!(p.starts_with("--- /dev/null\n+++ b/tmp/f"), "{p}");
        assert_eq!(apply("", &p).as_deref(), Some("Hello World"));
        assert!(is_deletion(&make("/tmp/f", Some("x\n"), None)));
    }

    #[test]
    fn one_hunk_diffs_apply_back() {
        let cases = [
            ("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nd\nX\nY\nf\ng\nh\n"),
            ("", "new\nfile"),
            ("gone\n", ""),
            ("x\ny", "x\nz"),
            ("same\n", "same\n"),
            ("1\n2\n", "0\n1\n2\n"),
            ("1\n2\n", "1\n2\n3"),
        ];
        for (before, after) in cases {
            let body = Middle::of(before, after).one_hunk();
            let p = format!("--- a/f\n+++ b/f\n{body}");
            let applied = if body.is_empty() {
                Some(before.to_string())
            } else {
                apply(before, &p)
            };
            assert_eq!(
                applied.as_deref(),
                Some(after),
                "{before:?} -> {after:?}:\n{p}"
            );
        }
    }

    #[test]
    fn a_diff_of_two_large_unlike_texts_takes_linear_time() {
        // Myers' search on 200,000 changed lines would take minutes.
        let before: String = (0..100_000).map(|i| format!("a{i}\n")).collect();
        let after: String = (0..100_000).map(|i| format!("b{i}\n")).collect();
        let started = std::time::Instant::now();
        let p = make("f", Some(&before), Some(&after));
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
        assert_eq!(apply(&before, &p).as_deref(), Some(after.as_str()));
        let small = make("f", Some("a\nb\n"), Some("a\nc\n"));
        assert!(small.contains("@@ -1,2 +1,2 @@\n a\n-b\n+c\n"), "{small}");
    }

    #[test]
    fn structured_hunks_render_and_apply() {
        let hunks: Vec<Value> = serde_json::from_str(
            r#"[{"oldStart":1,"oldLines":1,"newStart":1,"newLines":1,"lines":["-Hello World","+Goodbye World"]}]"#,
        )
        .unwrap();
        let p = render_structured("/tmp/t.txt", &hunks);
        assert_eq!(
            apply("Hello World\n", &p).as_deref(),
            Some("Goodbye World\n")
        );
        assert_eq!(apply("other\n", &p), None);
    }
}
