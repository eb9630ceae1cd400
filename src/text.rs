//! Small text helpers shared by every module that writes for people: escaping outside values
//! ([`clean`]), numbers ([`thousands`]), times ([`timestamp`]), the rate asked for ([`rate_limit_text`]) and achieved ([`per_second_text`]) and
//! redaction ([`Redaction`]). It imports nothing from the crate but [`crate::model`], so both
//! `render` and `state` can use it without a cycle (see `docs/ARCHITECTURE.md`).

use crate::model::Identifier;

/// What stands in for a hidden value.
pub const REDACTED: &str = "***";

/// True for the characters [`clean`] escapes: controls (C0, DEL, C1), which drive a terminal,
/// and the invisible or reordering ones that make printed text lie about its content: bidi
/// embeddings, overrides and isolates (U+202A–202E, U+2066–2069), zero-width spaces, joiners
/// and direction marks (U+200B–200F), the word joiner (U+2060) and the byte-order mark (U+FEFF).
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A path as printed in a message: control and invisible characters escaped ([`clean`]), so a
/// file name from outside (a line break in an archive's file name) cannot start a line of
/// its own.
pub fn shown_path(path: &std::path::Path) -> String {
    clean(&path.display().to_string())
}

/// A path as a word of a shell line a person may copy ([`shell_quote`]).
pub fn shell_path(path: &std::path::Path) -> String {
    shell_quote(&path.display().to_string())
}

/// A word for a POSIX shell line a person may copy: bare when it holds only characters no
/// shell treats specially, else in single quotes (a `'` inside as `'\''`). Control and
/// invisible characters are escaped first ([`clean`]), so a newline cannot end the line.
pub fn shell_quote(word: &str) -> String {
    let word = clean(word);
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | ':' | '@' | '%' | '+' | ',' | '=')
        });
    if plain {
        word
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Replaces control and invisible characters ([`is_deceptive`]) with Rust-style escapes
/// (`\n`, `\u{1b}`, `\u{202e}`), so a value can never drive the terminal or reorder what a
/// reviewer reads. Everything else, non-ASCII included, is kept.
pub fn clean(value: &str) -> String {
    if !value.chars().any(is_deceptive) {
        return value.to_owned();
    }
    value
        .chars()
        .map(|c| {
            if is_deceptive(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The last second an RFC 3339 timestamp can show: `9999-12-31T23:59:59Z`.
const LAST_SHOWN: u64 = 253_402_300_799;

/// An RFC 3339 UTC timestamp of Unix seconds. Total: a time before 1970 or after year 9999
/// (which no state file idprune accepts holds) is shown as `unix time N`, never a panic.
pub fn timestamp(unix: i64) -> String {
    match u64::try_from(unix) {
        Ok(secs) if secs <= LAST_SHOWN => {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            humantime::format_rfc3339_seconds(t).to_string()
        }
        _ => format!("unix time {unix}"),
    }
}

/// Reads a warehouse timestamp as Unix seconds (fractions dropped): `2026-12-01 10:00:00`,
/// `2026-12-01T10:00:00.123Z`, `2026-12-01 10:00:00 UTC`, `2026-12-01 10:00:00.000 -0800`,
/// `2026-12-01T11:00:00+01:00`. A time without a zone is read as UTC (Profiles Sync writes
/// UTC). `None` for anything else, or a time before 1970.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    // The zone: `Z`, ` UTC`, or a trailing `±HH`, `±HHMM`, `±HH:MM` after the seconds.
    let (clock, offset) = if let Some(rest) = t.strip_suffix('Z').or_else(|| t.strip_suffix(" UTC"))
    {
        (rest.trim_end(), 0i64)
    } else {
        let tail_at = t
            .get(19..)
            .and_then(|tail| tail.rfind(['+', '-']).map(|i| 19 + i));
        match tail_at {
            Some(i) => {
                let zone: String = t[i + 1..].chars().filter(|c| *c != ':').collect();
                if !(zone.len() == 2 || zone.len() == 4)
                    || !zone.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                let hours: i64 = zone[..2].parse().ok()?;
                let minutes: i64 = if zone.len() == 4 {
                    zone[2..].parse().ok()?
                } else {
                    0
                };
                let sign = if t.as_bytes()[i] == b'-' { -1 } else { 1 };
                (t[..i].trim_end(), sign * (hours * 3600 + minutes * 60))
            }
            None => (t, 0),
        }
    };
    let since = humantime::parse_rfc3339_weak(clock).ok()?;
    let secs = since.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()?.checked_sub(offset)
}

/// Groups thousands: `1204` → `1,204`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `up to 100/s`, or `no rate limit` for 0.
pub fn rate_limit_text(rate: u32) -> String {
    if rate == 0 {
        "no rate limit".into()
    } else {
        format!("up to {rate}/s")
    }
}

/// A rate with the precision a person reads: `0.25/s`, `3.4/s`, `98/s`, `1,204/s`.
pub fn per_second_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0/s".into()
    } else if per_sec < 1.0 {
        format!("{per_sec:.2}/s")
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{}/s", thousands(per_sec.round() as u64))
    }
}

/// `1 entry`, `2 entries`, `1,204 entries`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// What a space-level refusal (401, 403, unknown source) says, for apply and its canary:
/// nothing was marked failed, and the same command picks up once access is fixed.
pub fn space_refused(fault: impl std::fmt::Display, then: &str) -> String {
    format!(
        "Segment refused the space ({fault}); no item was marked failed. Fix the token or the space's access, then run the same command{then}"
    )
}

/// How values are shown: `Redaction(true)` hides identifier values behind [`REDACTED`].
#[derive(Clone, Copy, Debug)]
pub struct Redaction(pub bool);

impl Redaction {
    /// A value as shown: hidden, or cleaned.
    pub fn value(self, v: &str) -> String {
        if self.0 {
            REDACTED.to_owned()
        } else {
            clean(v)
        }
    }

    /// `type:value`, the value hidden when redacting.
    pub fn ident(self, i: &Identifier) -> String {
        format!("{}:{}", clean(&i.kind), self.value(&i.id))
    }

    /// A lookup as shown: `TYPE:VALUE` with the value hidden, or a hidden segment id.
    pub fn lookup(self, lookup: &str) -> String {
        if !self.0 {
            return clean(lookup);
        }
        match lookup.split_once(':') {
            Some((kind, _)) => format!("{}:{REDACTED}", clean(kind)),
            None => REDACTED.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("plans/x.state.db"), "plans/x.state.db");
        assert_eq!(shell_quote("my plans/x.db"), "'my plans/x.db'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_quote("a\nb"), "'a\\nb'");
    }

    use super::*;

    #[test]
    fn clean_escapes_controls_only() {
        assert_eq!(clean("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(clean("é\n"), "é\\n");
        assert_eq!(clean("plain"), "plain");
    }

    #[test]
    fn clean_escapes_bidi_and_invisible_characters() {
        assert_eq!(clean("a\u{202e}b"), "a\\u{202e}b");
        for c in [
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{200f}', '\u{2060}',
            '\u{feff}',
        ] {
            let shown = clean(&format!("x{c}y"));
            assert!(!shown.contains(c), "{c:?} kept in {shown:?}");
            assert_eq!(shown, format!("x{}y", c.escape_default()));
        }
        assert_eq!(clean("é日本"), "é日本");
    }

    #[test]
    fn thousands_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn redaction_keeps_types() {
        let r = Redaction(true);
        assert_eq!(r.lookup("user_id:u1"), "user_id:***");
        assert_eq!(r.lookup("use_abc"), "***");
        assert_eq!(r.ident(&Identifier::new("email", "a@x")), "email:***");
    }

    #[test]
    fn warehouse_timestamps_parse_in_each_form() {
        let at = 1_764_583_200; // 2025-12-01T10:00:00Z
        for text in [
            "2025-12-01 10:00:00",
            "2025-12-01T10:00:00Z",
            "2025-12-01T10:00:00.123Z",
            "2025-12-01 10:00:00 UTC",
            "2025-12-01 10:00:00.000000",
            "2025-12-01 02:00:00.000 -0800",
            "2025-12-01T11:00:00+01:00",
            "2025-12-01 11:00:00+01",
            " 2025-12-01 10:00:00 ",
        ] {
            assert_eq!(parse_time(text), Some(at), "{text}");
        }
        for bad in [
            "",
            "yesterday",
            "2025-12-01",
            "2025-12-01 10:00:00 +1",
            "1969-12-31 23:59:59",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_never_panic() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(timestamp(253_402_300_800), "unix time 253402300800");
        assert_eq!(timestamp(i64::MAX), format!("unix time {}", i64::MAX));
        assert_eq!(timestamp(-1), "unix time -1");
    }

    #[test]
    fn rates() {
        assert_eq!(plural(1, "deletion", "deletions"), "1 deletion");
        assert_eq!(plural(0, "deletion", "deletions"), "0 deletions");
        assert_eq!(plural(1204, "entry", "entries"), "1,204 entries");
        assert_eq!(per_second_text(0.0), "0/s");
        assert_eq!(per_second_text(0.254), "0.25/s");
        assert_eq!(per_second_text(3.44), "3.4/s");
        assert_eq!(per_second_text(98.2345), "98/s");
        assert_eq!(per_second_text(1204.4), "1,204/s");
        assert_eq!(per_second_text(f64::NAN), "0/s");
        assert_eq!(rate_limit_text(0), "no rate limit");
        assert_eq!(rate_limit_text(100), "up to 100/s");
    }
}
