//! Text a server sent is data, not terminal input, and may echo what we sent it.
//!
//! Everything kept from a response (the OAuth `error` and `error_description`, B2C's
//! correlation ID and timestamp, a `Content-Type`) passes through [`Scrubber::clean`]:
//!
//! * every secret the request carried is replaced by `[REDACTED]` in every encoding the
//!   request used or a server might echo (raw, form-urlencoded with `+` or `%20`, fully
//!   percent-encoded, JSON-escaped, base64 of the Basic `id:secret` pair), case-insensitively,
//!   and so is any fragment of one at least [`MIN_FRAGMENT`] characters long (a server that
//!   echoes "the first 12 characters" still leaks most of a secret);
//! * control characters (ESC, CR, LF, the C1 range, bidirectional overrides) become spaces,
//!   so a server cannot move a terminal's cursor, forge `code:`/`fix:` lines in the CLI's
//!   output or split a log line;
//! * each field is capped at [`MAX_FIELD`] bytes.

use base64::Engine as _;
use url::form_urlencoded;

/// The most bytes kept of one server-supplied field.
pub(crate) const MAX_FIELD: usize = 1024;
/// Fragments of a secret this long or longer count as the secret (shorter secrets count
/// as whole words only).
pub(crate) const MIN_FRAGMENT: usize = 8;
const REDACTED: &str = "[REDACTED]";

/// Cleans server text for one request: knows what that request sent.
#[derive(Default)]
pub(crate) struct Scrubber {
    /// Every encoding of every secret, ASCII-lowercased.
    needles: Vec<Vec<u8>>,
}

impl Scrubber {
    /// For a request that sent `secrets`, and `basic` (the base64 `id:secret` credentials of
    /// a Basic `Authorization` header) if it used one.
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>, basic: Option<&str>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            let json = serde_json::to_string(secret).unwrap_or_default();
            let base64 = base64::engine::general_purpose::STANDARD.encode(secret);
            for encoded in [
                secret.to_owned(),
                form.replace('+', "%20"),
                percent_encode_all(secret),
                json.trim_matches('"').to_owned(),
                base64.trim_end_matches('=').to_owned(),
                form,
            ] {
                let encoded = encoded.to_ascii_lowercase().into_bytes();
                if !needles.contains(&encoded) {
                    needles.push(encoded);
                }
            }
        }
        if let Some(basic) = basic.filter(|b| !b.is_empty()) {
            needles.push(basic.trim_end_matches('=').to_ascii_lowercase().into_bytes());
        }
        Self { needles }
    }

    /// `text` with secrets redacted, control characters replaced and the length capped.
    pub(crate) fn clean(&self, text: &str) -> String {
        // Cap first (with room for what redaction adds), so the work below is bounded.
        let text = truncate(text, MAX_FIELD * 4);
        let redacted = self.redact(text);
        let printable: String = redacted.chars().map(|c| if is_unsafe(c) { ' ' } else { c }).collect();
        let capped = truncate(&printable, MAX_FIELD);
        if capped.len() < printable.len() {
            format!("{capped}…[truncated]")
        } else {
            capped.to_owned()
        }
    }

    fn redact(&self, text: &str) -> String {
        if self.needles.is_empty() {
            return text.to_owned();
        }
        let lower = text.to_ascii_lowercase().into_bytes();
        let mut hidden = vec![false; lower.len()];
        for needle in &self.needles {
            let window = MIN_FRAGMENT.min(needle.len());
            // A secret shorter than a fragment counts only as a whole word: a one-letter
            // test secret must not blank every such letter of a message.
            let whole_word = needle.len() < MIN_FRAGMENT;
            for fragment in needle.windows(window) {
                let mut from = 0;
                while let Some(at) = find(&lower[from..], fragment) {
                    let start = from + at;
                    let end = start + window;
                    let bounded = |i: Option<&u8>| i.is_none_or(|b| !b.is_ascii_alphanumeric());
                    if !whole_word
                        || (bounded(start.checked_sub(1).and_then(|i| lower.get(i))) && bounded(lower.get(end)))
                    {
                        hidden[start..end].fill(true);
                    }
                    from = start + 1;
                }
            }
        }
        // Rebuild from the original text, one `[REDACTED]` per hidden run. A run may start or
        // end inside a multi-byte character only if the secret itself had one: widen it to
        // character boundaries.
        let mut out = String::with_capacity(text.len());
        let mut in_run = false;
        for (index, c) in text.char_indices() {
            let hide = hidden[index..index + c.len_utf8()].iter().any(|&h| h);
            if hide {
                if !in_run {
                    out.push_str(REDACTED);
                }
                in_run = true;
            } else {
                out.push(c);
                in_run = false;
            }
        }
        out
    }
}

/// Control characters (C0, DEL, C1), and the invisible formatting characters that reorder
/// or hide text on a terminal (bidirectional overrides and isolates, zero-width marks).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Every byte but ASCII letters and digits as `%XX`.
fn percent_encode_all(secret: &str) -> String {
    secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Xy78Q~kP3.aB_c9-ZzT";
    const PASSWORD: &str = "Passw0rd! 2";

    fn scrubber() -> Scrubber {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("client-id:{SECRET}"));
        Scrubber::new([SECRET, PASSWORD], Some(&basic))
    }

    #[test]
    fn every_encoding_of_a_secret_is_redacted() {
        let form: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let password_form: String = form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("client-id:{SECRET}"));
        for echoed in [
            SECRET.to_owned(),
            SECRET.to_uppercase(),
            form.clone(),
            form.to_lowercase(),
            password_form.clone(),
            password_form.replace('+', "%20"),
            percent_encode_all(PASSWORD),
            serde_json::to_string(PASSWORD).unwrap(),
            base64::engine::general_purpose::STANDARD.encode(SECRET),
            basic,
            SECRET[..12].to_owned(),
            SECRET[5..].to_owned(),
        ] {
            let text = format!("client_secret={echoed}&grant_type=x");
            let clean = scrubber().clean(&text);
            assert!(clean.contains(REDACTED), "{echoed:?} → {clean}");
            for fragment in echoed.as_bytes().windows(MIN_FRAGMENT) {
                let fragment = String::from_utf8_lossy(fragment).to_ascii_lowercase();
                assert!(!clean.to_ascii_lowercase().contains(&fragment), "{echoed:?} → {clean}");
            }
        }
    }

    #[test]
    fn other_text_is_kept() {
        let clean = scrubber().clean("AADB2C90225: The username or password provided in the request are invalid.");
        assert_eq!(
            clean,
            "AADB2C90225: The username or password provided in the request are invalid."
        );
    }

    #[test]
    fn control_characters_become_spaces_and_fields_are_capped() {
        let clean = Scrubber::default().clean("bad\r\n  fix: run this\u{1b}]8;;http://x\u{7}\u{202e}txt");
        assert!(!clean.chars().any(is_unsafe), "{clean:?}");
        assert!(!clean.contains('\n'));
        let long = Scrubber::default().clean(&"é".repeat(300_000));
        assert!(long.len() <= MAX_FIELD + "…[truncated]".len(), "{}", long.len());
        assert!(long.ends_with("…[truncated]"));
    }

    #[test]
    fn short_secrets_count_only_whole() {
        let scrubber = Scrubber::new(["abc"], None);
        assert_eq!(scrubber.clean("ab abc ABC=x abcd"), "ab [REDACTED] [REDACTED]=x abcd");
        assert_eq!(Scrubber::new(["s"], None).clean("application/json"), "application/json");
    }
}
