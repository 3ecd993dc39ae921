//! Format-preserving edits of Codex's `config.toml` (toml_edit keeps comments, order and
//! spacing of everything we do not touch).

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use super::{EditError, EditOutcome};

fn args_value(args: &[String]) -> Value {
    Value::Array(args.iter().map(String::as_str).collect::<Array>())
}

fn same_args(v: Option<&Item>, args: &[String]) -> bool {
    v.and_then(Item::as_array).is_some_and(|a| {
        a.len() == args.len() && a.iter().zip(args).all(|(x, y)| x.as_str() == Some(y))
    })
}

/// Put `[<table>.<name>]` with `command` and `args` into the document; other keys of the
/// entry (`env`, `startup_timeout_sec`, ...) are the user's and stay.
pub fn upsert_server(
    text: &str,
    table: &str,
    name: &str,
    command: &str,
    args: &[String],
) -> Result<(String, EditOutcome), EditError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |s| crate::config::line_col(text, s.start));
        EditError::Syntax {
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    if !doc.contains_key(table) {
        // `[mcp_servers.x]` alone, without an empty `[mcp_servers]` header above it.
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert(table, Item::Table(t));
    }
    let servers = doc[table].as_table_like_mut().ok_or_else(|| {
        EditError::Shape(format!(
            "`{table}` is not a table; fix it by hand, then run this again"
        ))
    })?;
    let inline = servers.is_dotted() || doc[table].is_inline_table();
    let servers = doc[table].as_table_like_mut().expect("checked above");
    let outcome = match servers.get_mut(name) {
        None => {
            if inline {
                let mut t = InlineTable::new();
                t.insert("command", command.into());
                t.insert("args", args_value(args));
                servers.insert(name, Item::Value(Value::InlineTable(t)));
            } else {
                let mut t = Table::new();
                t.insert("command", toml_edit::value(command));
                t.insert("args", Item::Value(args_value(args)));
                servers.insert(name, Item::Table(t));
            }
            EditOutcome::Added
        }
        Some(entry) => {
            let Some(entry) = entry.as_table_like_mut() else {
                return Err(EditError::Shape(format!(
                    "`{table}.{name}` is not a table; fix it by hand, then run this again"
                )));
            };
            let mut changed = false;
            if entry.get("command").and_then(Item::as_str) != Some(command) {
                set_keeping_decor(entry, "command", command.into());
                changed = true;
            }
            if !same_args(entry.get("args"), args) {
                set_keeping_decor(entry, "args", args_value(args));
                changed = true;
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
    let mut out = doc.to_string();
    if text.contains("\r\n") && !text.replace("\r\n", "").contains('\n') {
        // A CRLF file stays CRLF: toml_edit writes the lines it adds with `\n`.
        out = out.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    Ok((out, outcome))
}

/// Replace a value, keeping the spacing and comments around the old one.
fn set_keeping_decor(t: &mut dyn toml_edit::TableLike, key: &str, mut v: Value) {
    if let Some(old) = t.get(key).and_then(Item::as_value) {
        *v.decor_mut() = old.decor().clone();
    }
    t.insert(key, Item::Value(v));
}
