//! Text that a module controls (attributes, notes, messages, log lines, what
//! `describe` says), made safe to show on a terminal or in a line-based log.
//!
//! Start at [`escape_control`]: every control character (C0, DEL and C1:
//! newlines, ESC, NUL, ...) becomes a visible escape, so module text can
//! neither fake a line of output nor send the terminal a command. Stored
//! data and JSON keep the text as the module gave it (JSON escapes it).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with each control character written as a visible escape: `\n`,
/// `\r`, `\t`, `\0`, and `\u{1b}` for the others (ESC, DEL, C1 ...).
/// Borrows when there is nothing to escape.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\0' => escaped.push_str("\\0"),
            control if control.is_control() => {
                // Writing to a String cannot fail.
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(control));
            }
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

/// `text` cut to at most `limit` bytes at a character boundary, marked when
/// cut ("… (N bytes cut)").
pub fn truncated(text: &str, limit: usize) -> Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(escape_control("a\nb\r\tc\0"), "a\\nb\\r\\tc\\0");
        assert_eq!(escape_control("\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(escape_control("del\x7f c1\u{9b}"), "del\\u{7f} c1\\u{9b}");
        assert!(matches!(escape_control("plain ünïcode"), Cow::Borrowed("plain ünïcode")));
    }

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        assert_eq!(truncated("héllo", 2), "h… (5 bytes cut)");
        assert_eq!(truncated("hello", 5), "hello");
    }
}
