//! Text a server said, made inert for what opens our files: spreadsheet formulas (CSV), Markdown
//! (CI pages) and terminal escapes. Parquet and JSON keep the raw value: typed stores, not sheets.

use std::borrow::Cow;

/// A CSV cell that a spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, tab or
/// carriage return) gets a leading `'`, as OWASP's "CSV Injection" page recommends; a reader gets
/// the value back by dropping a leading `'` that precedes one of those characters.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// Text for a Markdown page: a plain identifier (letters, digits, `_ . : / -`) as a code span;
/// anything else with every ASCII punctuation character backslash-escaped (CommonMark allows it
/// for all of them; GitHub's tables read `\|`), and line breaks and control characters as
/// spaces, so it can neither leave its table cell nor become a link, an image or HTML.
pub fn markdown(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-'));
    if plain {
        return format!("`{text}`");
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push(' ');
        } else {
            if c.is_ascii_punctuation() {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Text for a terminal: every control character but the line feed (ESC and the rest of C0, DEL,
/// C1) shown as U+FFFD, so a server's message cannot retitle, clear or restyle the terminal.
pub fn terminal(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_other_cells_left_alone() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"click\")"),
            "'=HYPERLINK(\"http://x\",\"click\")"
        );
        for formula in ["+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(formula).starts_with('\''), "{formula:?}");
        }
        assert!(matches!(csv_cell("Hello = world"), Cow::Borrowed(_)));
    }

    #[test]
    fn markdown_quotes_cannot_leave_their_cell_or_call_home() {
        assert_eq!(markdown("rate_limit_exceeded"), "`rate_limit_exceeded`");
        let hostile = "x` | ![a](http://evil/p.png) <img src=x>\n| row";
        let quoted = markdown(hostile);
        assert!(!quoted.contains('\n'));
        // Every backtick is escaped: no code span opens.
        assert_eq!(
            quoted.matches('`').count(),
            quoted.matches("\\`").count(),
            "{quoted}"
        );
        assert!(
            quoted.contains("\\!\\[a\\]\\(http\\:\\/\\/evil\\/p\\.png\\)"),
            "{quoted}"
        );
        assert!(
            quoted.contains("\\|") && quoted.contains("\\<img"),
            "{quoted}"
        );
    }

    #[test]
    fn terminal_text_loses_its_escapes_but_keeps_its_lines() {
        assert_eq!(
            terminal("a\u{1b}]0;pwned\u{7}b\u{1b}[2Jc\nd"),
            "a\u{FFFD}]0;pwned\u{FFFD}b\u{FFFD}[2Jc\nd"
        );
        assert!(matches!(terminal("plain\ntext"), Cow::Borrowed(_)));
    }
}
