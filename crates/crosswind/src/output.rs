//! Printing rows as an aligned table, JSON lines or CSV (`--format table|json|csv`).
//!
//! Record fields are attacker-chosen (a user agent, a display name): a table never writes their
//! control characters to the terminal (ESC sequences, BEL, a bidi override), and a CSV cell a
//! spreadsheet would run as a formula is neutralised. A reader that closes the pipe early
//! (`| head`) ends the command quietly ([`is_broken_pipe`]).

use std::borrow::Cow;
use std::io::{self, Write};

use serde_json::Value;

/// How commands that print data print it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// One JSON object per line.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// Rows with named columns; values are JSON so `json` keeps types and lists.
pub struct Rows {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn new(columns: Vec<&'static str>) -> Self {
        Rows {
            columns,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn write(&self, format: OutputFormat, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        // Stdout flushes at every newline: tens of thousands of rows would be as many writes.
        let mut out = io::BufWriter::with_capacity(64 << 10, out);
        match format {
            OutputFormat::Json => self.write_json(&mut out),
            OutputFormat::Csv => self.write_csv(&mut out),
            OutputFormat::Table => self.write_table(&mut out),
        }?;
        out.flush()
    }

    fn write_json(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        // Written by hand to keep the columns in their order (serde_json maps sort keys).
        for row in &self.rows {
            out.write_all(b"{")?;
            for (i, (column, value)) in self.columns.iter().zip(row).enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, column)?;
                out.write_all(b":")?;
                serde_json::to_writer(&mut *out, value)?;
            }
            out.write_all(b"}\n")?;
        }
        Ok(())
    }

    fn write_csv(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
        writeln!(out, "{}", header.join(","))?;
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(csv_cell).collect();
            writeln!(out, "{}", fields.join(","))?;
        }
        Ok(())
    }

    fn write_table(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        const MAX_WIDTH: usize = 48;
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| truncate(&terminal_safe(&plain(v)), MAX_WIDTH))
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        // Built in memory, then written once.
        let mut text = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let start = text.len();
            for (i, (cell, w)) in cells.zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
            let trimmed = text[start..].trim_end().len();
            text.truncate(start + trimmed);
            text.push('\n');
        };
        line(&mut self.columns.iter().copied());
        for row in &cells {
            line(&mut row.iter().map(String::as_str));
        }
        if self.rows.is_empty() {
            text.push_str("(no rows)\n");
        }
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// A value as plain text: strings bare, lists joined with `;`, null empty.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// `s` with every character a terminal would act on written as an escape instead: C0 and C1
/// controls and DEL (`\x1b`, `\x07`, `\n`, …) and the invisible format characters that
/// reorder or hide text (bidi overrides and isolates, zero-width characters).
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One CSV cell. Text a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, tab or
/// CR) gets a leading `'` and is quoted; numbers stay numbers.
fn csv_cell(v: &Value) -> String {
    let text = plain(v);
    if !v.is_number() && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        return format!("\"'{}\"", text.replace('"', "\"\""));
    }
    csv_field(&text)
}

/// Whether `error` comes from writing to a pipe whose reader has gone (`| head`): the command
/// ends quietly with exit 0, as Unix tools do.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that returns the error (a closed pipe) instead of panicking.
pub fn say(line: std::fmt::Arguments<'_>) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{line}")
}

/// `eprintln!` that never panics: when stderr is closed the line is lost, nothing more.
pub fn note(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Rows {
        let mut rows = Rows::new(vec!["user", "score", "tags"]);
        rows.push(vec![json!("a@x.com"), json!(2), json!(["p", "q"])]);
        rows.push(vec![json!("b,\"c\""), json!(null), json!([])]);
        rows
    }

    fn render(format: OutputFormat) -> String {
        let mut out = Vec::new();
        sample().write(format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_cells_never_carry_terminal_controls() {
        let mut rows = Rows::new(vec!["user", "agent"]);
        rows.push(vec![
            json!("evil\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            json!("a\u{202e}gpj.exe\nline\u{9b}31m"),
        ]);
        let mut out = Vec::new();
        rows.write(OutputFormat::Table, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("evil\\x1b]0;pwned\\x07\\x1b[2J"), "{text}");
        assert!(text.contains("a\\u{202e}gpj.exe\\nline\\x9b31m"), "{text}");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_are_neutralised() {
        let mut rows = Rows::new(vec!["cell"]);
        for v in [
            json!("=HYPERLINK(\"http://x\",\"y\")"),
            json!("+1+cmd|' /C calc'!A0"),
            json!("-2+3"),
            json!("@SUM(A1)"),
            json!("\t=1"),
            json!("\r=1"),
            json!(-5),
            json!("a=b"),
        ] {
            rows.push(vec![v]);
        }
        let mut out = Vec::new();
        rows.write(OutputFormat::Csv, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "cell\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n\"'+1+cmd|' /C calc'!A0\"\n\"'-2+3\"\n\"'@SUM(A1)\"\n\"'\t=1\"\n\"'\r=1\"\n-5\na=b\n"
        );
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_context_and_serde() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(
            &anyhow::Error::from(pipe()).context("cannot write")
        ));
        let json = serde_json::Error::io(pipe());
        assert!(is_broken_pipe(
            &anyhow::Error::from(json).context("cannot write")
        ));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no such identity")));
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::from(denied)));
    }

    #[test]
    fn formats() {
        assert_eq!(
            render(OutputFormat::Json),
            "{\"user\":\"a@x.com\",\"score\":2,\"tags\":[\"p\",\"q\"]}\n{\"user\":\"b,\\\"c\\\"\",\"score\":null,\"tags\":[]}\n"
        );
        assert_eq!(
            render(OutputFormat::Csv),
            "user,score,tags\na@x.com,2,p;q\n\"b,\"\"c\"\"\",,\n"
        );
        assert_eq!(
            render(OutputFormat::Table),
            "user     score  tags\na@x.com  2      p;q\nb,\"c\"\n"
        );
    }
}
