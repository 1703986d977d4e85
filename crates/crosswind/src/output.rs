//! Printing rows as an aligned table, JSON lines or CSV (`--format table|json|csv`).

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
        match format {
            OutputFormat::Json => self.write_json(out),
            OutputFormat::Csv => self.write_csv(out),
            OutputFormat::Table => self.write_table(out),
        }
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
            let fields: Vec<String> = row.iter().map(|v| csv_field(&plain(v))).collect();
            writeln!(out, "{}", fields.join(","))?;
        }
        Ok(())
    }

    fn write_table(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        const MAX_WIDTH: usize = 48;
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|v| truncate(&plain(v), MAX_WIDTH)).collect())
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
