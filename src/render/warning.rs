//! A manifest warning as printed, with the values it quotes hidden on request.

use crate::manifest::Diagnostic;

/// A manifest warning as printed: with `--redact`, the values it quotes are hidden.
pub fn warning_text(w: &Diagnostic, redact: bool) -> String {
    if redact {
        format!("{}: {}", w.location, redact_quoted(&w.message))
    } else {
        w.to_string()
    }
}

/// `text` with every backtick-quoted value that holds a `type:value` or an `@` replaced by its
/// type and [`crate::text::REDACTED`]: the values a manifest warning quotes are identifiers and
/// lookups, while key names (`identifier`, `profile`) have neither and stay readable.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('`');
        let quoted = i % 2 == 0;
        if quoted && (part.contains(':') || part.contains('@') || part.starts_with("use_")) {
            out.push_str(&crate::text::Redaction(true).lookup(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted_and_key_names_kept() {
        assert_eq!(
            redact_quoted(
                "Segment lookups are lowercase; `email:Dave@Acme.io` may resolve to no profile"
            ),
            "Segment lookups are lowercase; `email:***` may resolve to no profile"
        );
        assert_eq!(
            redact_quoted("`profile_type` needs a `profile_column`; `use_ABC` and `a@x.com`"),
            "`profile_type` needs a `profile_column`; `***` and `***`"
        );
        assert_eq!(redact_quoted("no quotes"), "no quotes");
    }
}
