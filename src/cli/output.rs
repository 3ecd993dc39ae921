//! How the CLI prints: aligned tables for people, JSON for scripts, one-line errors with
//! their causes, and logs to a file (never to the terminal).
//!
//! What the CLI shows comes from agents, transcripts and tickets, and may hold escape
//! sequences (clipboard writes, title changes, screen clears) or bidi overrides. Every
//! line for people goes through [`say!`], [`say_err!`] or [`print_table`], which pass it
//! through `safe_text::for_terminal`; JSON goes through [`print_json`] or
//! [`write_json_line`], which escape the same characters the JSON way.

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;
use shopfloor::safe_text::{for_terminal, is_unsafe};
use shopfloor::workspace::Home;

/// `println!` for people: the line is made safe for a terminal first. A failed write is
/// ignored like a closed pipe (which ends the process anyway).
macro_rules! say {
    () => {
        $crate::cli::output::say!("")
    };
    ($($arg:tt)*) => {{
        let _ = $crate::cli::output::write_line(
            &mut ::std::io::stdout().lock(),
            format_args!($($arg)*),
        );
    }};
}

/// `eprintln!` for people, like [`say!`].
macro_rules! say_err {
    ($($arg:tt)*) => {{
        let _ = $crate::cli::output::write_line(
            &mut ::std::io::stderr().lock(),
            format_args!($($arg)*),
        );
    }};
}

pub(crate) use {say, say_err};

/// Write one line of human-readable output, made safe for a terminal.
pub fn write_line(out: &mut impl Write, line: std::fmt::Arguments) -> std::io::Result<()> {
    match line.as_str() {
        Some(s) => writeln!(out, "{}", for_terminal(s)),
        None => writeln!(out, "{}", for_terminal(&line.to_string())),
    }
}

pub fn print_error(e: &anyhow::Error) {
    say_err!("error: {e}");
    for cause in e.chain().skip(1) {
        say_err!("  caused by: {cause}");
    }
}

/// Log to `<home>/logs/shopfloor.log`; level from `SHOPFLOOR_LOG` (default `info`).
/// Returns the guard that flushes the log on drop; None if the directory is unusable.
pub fn init_logging(home: &Home) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = home.logs_dir();
    // The logs hold agent output and paths: the home and its logs are owner-only.
    shopfloor::private::private_dir(home.root()).ok()?;
    shopfloor::private::private_dir(&dir).ok()?;
    let file = tracing_appender::rolling::never(&dir, "shopfloor.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOPFLOOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // rmcp logs every request and response whole at debug: tool arguments, memory
        // text, secrets an agent sent. Each call is logged redacted by api::mcp::service.
        .add_directive("rmcp=info".parse().expect("a constant directive"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// `value` as pretty JSON on stdout, terminal-safe (see [`TerminalSafeJson`]).
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let formatter = TerminalSafeJson(serde_json::ser::PrettyFormatter::new());
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    writeln!(out)?;
    Ok(())
}

/// `value` as one line of JSON (for JSON Lines streams), terminal-safe.
pub fn write_json_line<T: Serialize + ?Sized>(
    out: &mut impl Write,
    value: &T,
) -> std::io::Result<()> {
    let formatter = TerminalSafeJson(serde_json::ser::CompactFormatter);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut *out, formatter,
    ))?;
    writeln!(out)
}

/// A JSON formatter that also writes DEL, C1 controls and bidi overrides as `\uXXXX`
/// escapes (serde_json escapes only C0): `--json` on a terminal acts on nothing, and any
/// JSON parser reads back exactly the same text.
struct TerminalSafeJson<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafeJson<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices().filter(|&(_, c)| is_unsafe(c)) {
            w.write_all(&fragment.as_bytes()[start..i])?;
            // All of them are in the Basic Multilingual Plane: one escape each.
            write!(w, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    // The layout is the wrapped formatter's.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Print rows as left-aligned columns; the last column is not padded. Cells are made
/// safe for a terminal before they are measured.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| for_terminal(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// A list command's output: the items as a JSON array with `--json`; else a table of one
/// row per item under `header`, or `empty` said when there are none (see [`print_rows`]).
pub fn print_list<T: Serialize>(
    json: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    empty: &str,
) -> anyhow::Result<()> {
    if json {
        return print_json(items);
    }
    print_rows(items, header, row, empty);
    Ok(())
}

/// A list for people only, for the lists whose JSON is not the items themselves: a table
/// of one row per item under `header`, or `empty` said when there are none, so an empty
/// list always says what would fill it.
pub fn print_rows<T>(items: &[T], header: &[&str], row: impl Fn(&T) -> Vec<String>, empty: &str) {
    if items.is_empty() {
        say!("{empty}");
        return;
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    print_table(header, &rows);
}

/// A timestamp as people read it in a table: local date and time to the second.
pub fn when(ts: Timestamp) -> String {
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    zoned.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Cut text to `max` characters on one line, marking the cut; other characters a
/// terminal would act on are shown escaped.
pub fn clip(text: &str, max: usize) -> String {
    let spaced: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let one_line = for_terminal(&spaced);
    if one_line.chars().count() <= max {
        one_line.into_owned()
    } else {
        let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// One step as a timeline line: sequence, `!` for errors, time, kind, summary. The run
/// timeline and `run logs` share it so a step reads the same in both.
pub fn step_line(s: &shopfloor::model::Step, seq_width: usize, summary_max: usize) -> String {
    let summary = clip(&s.kind.summary(), summary_max);
    shopfloor::trace::detail::timeline_row(s, seq_width, &summary)
}
