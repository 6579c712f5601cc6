//! Text from outside shipgate (response bodies and headers, platform log lines, other
//! services' error messages, configuration values) made safe to show people: control
//! characters shown as escapes, so a body cannot move the cursor, recolour the terminal or
//! forge a line such as "smoke: all checks passed"; and long values cut to an excerpt, so a
//! 10 MB value is not echoed whole.
//!
//! Files meant for machines (JSON reports, the summary) keep the raw text: JSON escapes
//! control characters by itself.

use std::borrow::Cow;

/// The most characters of an outside value an error message or report line quotes.
pub const EXCERPT_CHARS: usize = 200;

/// `text` for one line of output: every control character, line breaks included, and every
/// character that reorders or hides text (bidirectional overrides, line separators) is shown
/// as its escape (`\u{1b}`).
///
/// ```
/// use shipgate_core::one_line;
/// assert_eq!(one_line("ok\n\u{1b}[2Ksmoke: passed"), "ok\\u{a}\\u{1b}[2Ksmoke: passed");
/// assert_eq!(one_line("plain text"), "plain text");
/// ```
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| is_unsafe(c) || c == '\n' || c == '\t')
}

/// `text` for multi-line output: like [`one_line`] but line feeds and tabs are kept (a
/// carriage return is escaped: it would let a line overwrite the one shown before it).
///
/// ```
/// use shipgate_core::printable;
/// assert_eq!(printable("a\n\tb\r\u{0}"), "a\n\tb\\u{d}\\u{0}");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// At most `max_chars` characters of `text`; a longer text is cut and says how much was left
/// out (`… (9,800 more characters)`), so an error quoting a huge input stays readable.
///
/// ```
/// use shipgate_core::excerpt;
/// assert_eq!(excerpt("abcdef", 3), "abc… (3 more characters)");
/// assert_eq!(excerpt("abc", 3), "abc");
/// ```
pub fn excerpt(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let left_out = text[cut..].chars().count();
            Cow::Owned(format!("{}… ({left_out} more characters)", &text[..cut]))
        }
    }
}

/// `message` with every value it quotes between backticks cut to [`EXCERPT_CHARS`]
/// characters, the words around them kept: an error about a 10 MB value still fits a
/// terminal and still says what is wrong.
///
/// ```
/// use shipgate_core::shorten_quoted;
/// let message = format!("tag `{}` is invalid", "x".repeat(1000));
/// assert!(shorten_quoted(&message).ends_with("… (800 more characters)` is invalid"));
/// ```
pub fn shorten_quoted(message: &str) -> Cow<'_, str> {
    let long = message
        .split('`')
        .skip(1)
        .step_by(2)
        .any(|quoted| quoted.chars().nth(EXCERPT_CHARS).is_some());
    if !long {
        return Cow::Borrowed(message);
    }
    let parts: Vec<Cow<'_, str>> = message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                excerpt(part, EXCERPT_CHARS)
            } else {
                Cow::Borrowed(part)
            }
        })
        .collect();
    Cow::Owned(parts.join("`"))
}

/// An outside value as an error message or report line quotes it: at most
/// [`EXCERPT_CHARS`] characters, on one line.
pub fn quote_outside(text: &str) -> String {
    one_line(&excerpt(text, EXCERPT_CHARS)).into_owned()
}

/// Control characters (C0 but line feed and tab, DEL, C1) and the characters that reorder or
/// hide what a terminal shows.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero-width characters and direction marks
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{feff}')
}

fn escape_where(text: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_nul_and_bidi_overrides_are_shown_not_obeyed() {
        let hostile = "\u{1b}[1A\u{1b}[2K\u{1b}[32msmoke: passed\u{0}\u{7f}\u{9b}\u{202e}";
        let shown = one_line(hostile);
        assert!(
            !shown.chars().any(is_unsafe),
            "an unsafe character survived: {shown:?}"
        );
        assert_eq!(
            shown,
            "\\u{1b}[1A\\u{1b}[2K\\u{1b}[32msmoke: passed\\u{0}\\u{7f}\\u{9b}\\u{202e}"
        );
        assert!(matches!(one_line("héllo → ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_escapes_line_breaks_and_printable_keeps_them() {
        assert_eq!(one_line("a\r\nb\tc"), "a\\u{d}\\u{a}b\\u{9}c");
        assert_eq!(printable("a\r\nb\tc"), "a\\u{d}\nb\tc");
    }

    #[test]
    fn excerpts_cut_on_character_boundaries_and_count_what_is_left_out() {
        let long = "é".repeat(10_000);
        let cut = excerpt(&long, EXCERPT_CHARS);
        assert!(cut.starts_with(&"é".repeat(EXCERPT_CHARS)));
        assert!(cut.ends_with("… (9800 more characters)"), "{cut}");
        assert!(matches!(excerpt("short", EXCERPT_CHARS), Cow::Borrowed(_)));
        assert_eq!(quote_outside("x\ny"), "x\\u{a}y");
        let huge = format!(
            "a `{}` b `short` c `{}",
            "v".repeat(10_000_000),
            "w".repeat(300)
        );
        let shown = shorten_quoted(&huge);
        assert!(shown.len() < 1000, "{}", shown.len());
        assert!(shown.contains("` b `short` c `") && shown.ends_with("(100 more characters)"));
    }
}
