//! Comment-preserving edits of JSON config files (JSONC: `//` and `/* */` comments,
//! trailing commas). The file is parsed into a concrete syntax tree that keeps every
//! comment and every byte of whitespace; only the nodes we change are re-rendered, so the
//! rest of the file comes back byte for byte.

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstArray, CstInputValue, CstObject, CstObjectProp, CstRootNode};
use serde_json::Value;

use super::{EditError, EditOutcome};

/// What the JSON config dialects our clients read accept: JSON plus comments and trailing
/// commas. Looser syntax (single quotes, bare keys, missing commas) is refused, since the
/// client reading the file would refuse it too.
fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        ..ParseOptions::default()
    }
}

/// The document's top-level object; None when the text is empty (or only whitespace and
/// comments), which the callers treat as a new file.
fn parse(text: &str) -> Result<Option<(CstRootNode, CstObject)>, EditError> {
    let root = CstRootNode::parse(text, &options()).map_err(|e| EditError::Syntax {
        line: e.line_display(),
        column: e.column_display(),
        message: e.kind().to_string(),
    })?;
    let Some(value) = root.value() else {
        return Ok(None);
    };
    let Some(obj) = value.as_object() else {
        return Err(EditError::Shape(
            "the top level is not a JSON object".to_string(),
        ));
    };
    Ok(Some((root, obj)))
}

/// serde_json value → CST input, keeping object keys in the map's order.
fn input(v: &Value) -> CstInputValue {
    match v {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(a) => CstInputValue::Array(a.iter().map(input).collect()),
        Value::Object(o) => {
            CstInputValue::Object(o.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

fn object_input(fields: &[(&str, Value)]) -> CstInputValue {
    CstInputValue::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), input(v)))
            .collect(),
    )
}

/// A new document with `fields` (in order) as the object at `path`.
fn render_new(path: &[&str], fields: &[(&str, Value)]) -> String {
    let root = CstRootNode::parse("{\n}\n", &options()).expect("`{}` parses");
    let mut obj = root.object_value_or_set();
    for k in path {
        obj = obj.object_value_or_set(k);
    }
    for (k, v) in fields {
        obj.append(k, input(v));
    }
    let text = root.to_string();
    if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    }
}

/// Find the object at `key` in `obj`, creating it (empty) when absent; an existing value
/// that is not an object is the user's and is refused rather than replaced.
fn child_object(obj: &CstObject, key: &str, at: &str) -> Result<CstObject, EditError> {
    match obj.get(key) {
        None => Ok(obj.object_value_or_set(key)),
        Some(prop) => prop.object_value().ok_or_else(|| {
            EditError::Shape(format!(
                "`{at}` is not an object; fix it by hand, then run this again"
            ))
        }),
    }
}

fn child_array(obj: &CstObject, key: &str, at: &str) -> Result<Option<CstArray>, EditError> {
    match obj.get(key) {
        None => Ok(None),
        Some(prop) => prop.array_value().map(Some).ok_or_else(|| {
            EditError::Shape(format!(
                "`{at}` is not an array; fix it by hand, then run this again"
            ))
        }),
    }
}

fn value_of(prop: &CstObjectProp) -> Option<Value> {
    prop.value().and_then(|v| v.to_serde_value())
}

/// Put the entry `name` into the object at `parents` (created as needed). `owned` fields
/// are ours and are set to these values; `defaults` are written only when the field is
/// absent, so what the user added there (an `env` variable, say) stays.
pub fn upsert_entry(
    text: &str,
    parents: &[&str],
    name: &str,
    owned: &[(&str, Value)],
    defaults: &[(&str, Value)],
) -> Result<(String, EditOutcome), EditError> {
    let all: Vec<(&str, Value)> = owned.iter().chain(defaults).cloned().collect();
    let Some((root, top)) = parse(text)? else {
        let mut path = parents.to_vec();
        path.push(name);
        return Ok((render_new(&path, &all), EditOutcome::Added));
    };
    let mut obj = top;
    let mut at = String::new();
    for p in parents {
        if !at.is_empty() {
            at.push('.');
        }
        at.push_str(p);
        obj = child_object(&obj, p, &at)?;
    }
    let outcome = match obj.get(name) {
        None => {
            obj.append(name, object_input(&all));
            EditOutcome::Added
        }
        Some(prop) => {
            let Some(entry) = prop.object_value() else {
                // Not an object at all: ours to replace, since the name is ours.
                prop.set_value(object_input(&all));
                return Ok((finish(text, &root), EditOutcome::Updated));
            };
            let mut changed = false;
            for (k, v) in owned {
                match entry.get(k) {
                    Some(p) if value_of(&p).as_ref() == Some(v) => {}
                    Some(p) => {
                        p.set_value(input(v));
                        changed = true;
                    }
                    None => {
                        entry.append(k, input(v));
                        changed = true;
                    }
                }
            }
            for (k, v) in defaults {
                if entry.get(k).is_none() {
                    entry.append(k, input(v));
                    changed = true;
                }
            }
            if changed {
                EditOutcome::Updated
            } else {
                EditOutcome::Unchanged
            }
        }
    };
    if outcome == EditOutcome::Unchanged {
        return Ok((text.to_string(), outcome));
    }
    Ok((finish(text, &root), outcome))
}

/// One Claude Code hook command under `hooks.<event>`: `{"matcher": .., "hooks": [{"type":
/// "command", "command": ..}]}`. An identical command anywhere under the event is left as
/// it is; a command `is_ours` recognises (our hook from an older install, say at another
/// path) is rewritten in place; otherwise a new group is appended after the user's.
pub fn add_hook(
    text: &str,
    event: &str,
    matcher: Option<&str>,
    command: &str,
    is_ours: &dyn Fn(&str) -> bool,
) -> Result<(String, EditOutcome), EditError> {
    let hook = CstInputValue::Object(vec![
        ("type".into(), CstInputValue::String("command".into())),
        ("command".into(), CstInputValue::String(command.into())),
    ]);
    let mut group = Vec::new();
    if let Some(m) = matcher {
        group.push(("matcher".to_string(), CstInputValue::String(m.into())));
    }
    group.push(("hooks".to_string(), CstInputValue::Array(vec![hook])));
    let group = CstInputValue::Object(group);

    let (root, top) = match parse(text)? {
        Some(doc) => doc,
        None => {
            let root = CstRootNode::parse("{\n}\n", &options()).expect("`{}` parses");
            let top = root.object_value_or_set();
            (root, top)
        }
    };
    let hooks = child_object(&top, "hooks", "hooks")?;
    let at = format!("hooks.{event}");
    let Some(groups) = child_array(&hooks, event, &at)? else {
        hooks.append(event, CstInputValue::Array(vec![group]));
        return Ok((finish(text, &root), EditOutcome::Added));
    };
    // Commands already there, and the string nodes holding them.
    let mut ours = None;
    for g in groups.elements() {
        let Some(g) = g.as_object() else { continue };
        let Some(list) = g.get("hooks").and_then(|p| p.array_value()) else {
            continue;
        };
        for h in list.elements() {
            let Some(h) = h.as_object() else { continue };
            let Some(prop) = h.get("command") else {
                continue;
            };
            let Some(Value::String(existing)) = value_of(&prop) else {
                continue;
            };
            if existing == command {
                return Ok((text.to_string(), EditOutcome::Unchanged));
            }
            if ours.is_none() && is_ours(&existing) {
                ours = Some(prop);
            }
        }
    }
    let outcome = match ours {
        Some(prop) => {
            prop.set_value(CstInputValue::String(command.into()));
            EditOutcome::Updated
        }
        None => {
            groups.append(group);
            EditOutcome::Added
        }
    };
    Ok((finish(text, &root), outcome))
}

/// The edited document's text, ending with a newline when the original did (or was new).
fn finish(original: &str, root: &CstRootNode) -> String {
    let mut out = root.to_string();
    let ends_nl = original.is_empty() || original.ends_with('\n');
    if ends_nl && !out.ends_with('\n') {
        out.push_str(if original.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        });
    }
    out
}
