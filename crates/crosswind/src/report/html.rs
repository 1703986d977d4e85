//! A small HTML/SVG writer in which text from records cannot become markup.
//!
//! Record fields are attacker-controlled (a user principal name typed into a failed sign-in, a
//! user agent), so the writer offers no way to emit a runtime string unescaped: element and
//! attribute names are `&'static str` (never record data), every text node and attribute value
//! goes through [`escape_into`], and the only raw output is [`Html::raw_static`], which also
//! takes `&'static str` (the style sheet). Event-handler attributes (`on…`) and `<script>` are
//! refused, so the page works — and is safe — with JavaScript off.

use std::fmt::Write as _;

/// Markup being written.
#[derive(Default)]
pub struct Html {
    out: String,
}

/// A start tag whose attributes are being written; finish it with [`Tag::body`],
/// [`Tag::text`] or [`Tag::empty`].
#[must_use = "a tag must be finished with body, text or empty"]
pub struct Tag<'a> {
    html: &'a mut Html,
    name: &'static str,
}

/// A value an attribute can take; strings are escaped, numbers printed plainly.
pub trait AttrValue {
    fn write_attr(&self, out: &mut String);
}

impl AttrValue for &str {
    fn write_attr(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl AttrValue for String {
    fn write_attr(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl AttrValue for &String {
    fn write_attr(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl AttrValue for f64 {
    fn write_attr(&self, out: &mut String) {
        push_num(out, *self);
    }
}

impl AttrValue for i64 {
    fn write_attr(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl AttrValue for usize {
    fn write_attr(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Html {
    pub fn new() -> Html {
        Html::default()
    }

    /// Starts `<name`; names are compile-time constants.
    pub fn tag(&mut self, name: &'static str) -> Tag<'_> {
        debug_assert!(valid_name(name) && name != "script", "tag {name:?}");
        self.out.push('<');
        self.out.push_str(name);
        Tag { html: self, name }
    }

    /// Text, escaped.
    pub fn text(&mut self, text: &str) -> &mut Html {
        escape_into(&mut self.out, text);
        self
    }

    /// Markup that is part of the program (the style sheet, the doctype), never record data.
    pub fn raw_static(&mut self, markup: &'static str) -> &mut Html {
        self.out.push_str(markup);
        self
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

impl<'a> Tag<'a> {
    /// `name="value"`, the value escaped.
    pub fn attr(self, name: &'static str, value: impl AttrValue) -> Tag<'a> {
        debug_assert!(
            valid_name(name) && !name.to_ascii_lowercase().starts_with("on"),
            "attribute {name:?}"
        );
        let out = &mut self.html.out;
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        value.write_attr(out);
        out.push('"');
        self
    }

    /// `class="…"` from a constant.
    pub fn class(self, class: &'static str) -> Tag<'a> {
        self.attr("class", class)
    }

    /// An in-page link target: `href="#id"`. Only fragments: a report links nowhere else.
    pub fn href_fragment(self, id: &str) -> Tag<'a> {
        self.attr("href", format!("#{id}"))
    }

    /// Finishes the start tag, writes the children, closes the element.
    pub fn body(self, children: impl FnOnce(&mut Html)) -> &'a mut Html {
        let html = self.html;
        html.out.push('>');
        children(html);
        html.out.push_str("</");
        html.out.push_str(self.name);
        html.out.push('>');
        html
    }

    /// An element holding only (escaped) text.
    pub fn text(self, text: &str) -> &'a mut Html {
        self.body(|h| {
            h.text(text);
        })
    }

    /// An element without children: `<circle …/>` for SVG shapes, `<meta …>` for HTML void
    /// elements, `<div …></div>` for the rest (HTML has no self-closing `<div/>`).
    pub fn empty(self) -> &'a mut Html {
        let html = self.html;
        match self.name {
            "meta" | "br" | "hr" | "col" | "wbr" => html.out.push('>'),
            "circle" | "rect" | "line" | "path" | "polyline" | "polygon" | "ellipse" | "stop"
            | "use" => html.out.push_str("/>"),
            name => {
                html.out.push_str("></");
                html.out.push_str(name);
                html.out.push('>');
            }
        }
        html
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':')
}

/// Escapes `text` for an HTML text node or a quoted attribute value (also inside SVG). Control
/// characters become visible symbols and bidirectional overrides become U+FFFD, so a crafted
/// name cannot hide or reorder what the analyst reads.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            // C0 controls as their Control Pictures (␀ ␛ …), DEL as ␡.
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{7f}' => out.push('\u{2421}'),
            '\u{80}'..='\u{9f}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// `text` escaped, as a new string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// A coordinate or score: at most one decimal, no trailing `.0`, never NaN or infinite.
fn push_num(out: &mut String, n: f64) {
    let n = if n.is_finite() { n } else { 0.0 };
    let r = (n * 10.0).round() / 10.0;
    if r == r.trunc() {
        let _ = write!(out, "{}", r as i64);
    } else {
        let _ = write!(out, "{r:.1}");
    }
}
