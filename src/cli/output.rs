//! How the CLI prints: aligned tables for people, JSON for scripts, one-line errors with
//! their causes, and logs to a file (never to the terminal).

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;
use shopfloor::workspace::Home;

pub fn print_error(e: &anyhow::Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(err, "  caused by: {cause}");
    }
}

/// Log to `<home>/logs/shopfloor.log`; level from `SHOPFLOOR_LOG` (default `info`).
/// Returns the guard that flushes the log on drop; None if the directory is unusable.
pub fn init_logging(home: &Home) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = home.root().join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let file = tracing_appender::rolling::never(&dir, "shopfloor.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOPFLOOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // rmcp logs every request and response whole at debug: tool arguments, memory
        // text, secrets an agent sent. Each call is logged redacted by mcp::service.
        .add_directive("rmcp=info".parse().expect("a constant directive"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Print rows as left-aligned columns; the last column is not padded.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// A timestamp as people read it in a table: local date and time to the second.
pub fn when(ts: Timestamp) -> String {
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    zoned.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Cut text to `max` characters on one line, marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// One step as a timeline line: sequence, `!` for errors, time, kind, summary. The run
/// timeline and `run logs` share it so a step reads the same in both.
pub fn step_line(s: &shopfloor::model::Step, seq_width: usize, summary_max: usize) -> String {
    let mark = if s.kind.is_error() { "!" } else { " " };
    format!(
        "{:>seq_width$} {mark} {} {:<11} {}",
        s.seq,
        s.ts.strftime("%H:%M:%S"),
        s.kind.name(),
        clip(&s.kind.summary(), summary_max)
    )
}
