//! Unified diffs: made from before/after texts, rendered from Claude Code's structured
//! hunks, and applied back (for replay when only a base and a patch are known).

use serde_json::Value;

/// A unified diff of `before` → `after` (None before = created, None after = deleted).
pub fn make(path: &str, before: Option<&str>, after: Option<&str>) -> String {
    let old_name = if before.is_some() {
        format!("a{}", slash(path))
    } else {
        "/dev/null".into()
    };
    let new_name = if after.is_some() {
        format!("b{}", slash(path))
    } else {
        "/dev/null".into()
    };
    let diff = similar::TextDiff::from_lines(before.unwrap_or(""), after.unwrap_or(""));
    let body = diff.unified_diff().context_radius(3).to_string();
    format!("--- {old_name}\n+++ {new_name}\n{body}")
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
