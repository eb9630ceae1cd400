//! The per-item results file (`idprune report STATE --results`), like a bulk loader's success
//! and error files: one row per item with what happened to it (action, journal state, requests
//! sent, the last HTTP status, Segment's error code and message, its `Request-Id`), when its
//! first request was sent and when its journal row last changed. Values are masked unless the caller reveals them (the [`Masker`]
//! decides); CSV cells are made formula-safe ([`formula_safe`]).
//!
//! Segment's error code and message are read back from the journal's `last_error`, which holds
//! `STATUS CODE: MESSAGE` for an answered refusal; a transient fault (a timeout, a reset
//! connection) has no code and its whole text is the message.

use std::borrow::Cow;
use std::io::Write;

use serde::Serialize;

use crate::mask::Masker;
use crate::state::ResultItem;

/// The CSV header, in column order.
pub const COLUMNS: [&str; 13] = [
    "seq",
    "type",
    "value",
    "action",
    "state",
    "attempts",
    "http_status",
    "error_code",
    "error_message",
    "request_id",
    "first_attempt_at",
    "last_attempt_at",
    "origin",
];

/// One row of the results file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The item's number in the plan.
    pub seq: u64,
    /// Identifier type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value as shown (masked unless revealed).
    pub value: String,
    /// `delete`, `absent`, `blocked` or `unresolved`.
    pub action: &'static str,
    /// The journal state.
    pub state: &'static str,
    /// Requests sent for it over all runs.
    pub attempts: u32,
    /// The last HTTP status.
    pub http_status: Option<u16>,
    /// Segment's error code of the last refusal.
    pub error_code: Option<String>,
    /// The last error's message.
    pub error_message: Option<String>,
    /// Segment's `Request-Id` of the last response.
    pub request_id: Option<String>,
    /// When the first request was committed to send (RFC 3339); none when never sent.
    pub first_attempt_at: Option<String>,
    /// When the last request's intent or outcome was journaled (RFC 3339); none when never
    /// sent.
    pub last_attempt_at: Option<String>,
    /// Where the manifest asked for it (`file:line:col`).
    pub origin: String,
}

impl Row {
    /// The row of `r`, its value shown through `masker`.
    pub fn new(r: &ResultItem, masker: &Masker) -> Self {
        let s = &r.stored;
        let (error_code, error_message) =
            split_error(s.journal.last_error.as_deref(), s.journal.last_status);
        Self {
            seq: s.item.seq,
            kind: s.item.identifier.kind.clone(),
            value: masker.value(&s.item.identifier.kind, &s.item.identifier.id),
            action: s.item.action.as_str(),
            state: s.journal.state.as_str(),
            attempts: s.attempts,
            http_status: s.journal.last_status,
            error_code,
            error_message,
            request_id: s.journal.request_id.clone(),
            first_attempt_at: r
                .first_attempt_at
                .filter(|_| s.attempts > 0)
                .map(crate::text::timestamp),
            last_attempt_at: r
                .updated_at
                .filter(|_| s.attempts > 0)
                .map(crate::text::timestamp),
            origin: s.item.origin.clone(),
        }
    }
}

/// Splits a journaled error into Segment's code and message: `400 unsupported_eid_type: why`
/// (with `status` 400) gives `(unsupported_eid_type, why)`; any other text is all message.
pub fn split_error(error: Option<&str>, status: Option<u16>) -> (Option<String>, Option<String>) {
    let Some(error) = error else {
        return (None, None);
    };
    let coded = status.and_then(|status| {
        let rest = error.strip_prefix(&format!("{status} "))?;
        let (code, message) = rest.split_once(": ")?;
        let plain = !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        plain.then(|| (code.to_owned(), message.to_owned()))
    });
    match coded {
        Some((code, message)) => (Some(code), Some(message)),
        None => (None, Some(error.to_owned())),
    }
}

/// A CSV cell a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return gets a leading `'`, as OWASP's *CSV Injection* page advises (the CSV
/// writer quotes the rest).
pub fn formula_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// An optional cell, formula-safe; empty when absent.
fn opt(v: &Option<String>) -> Cow<'_, str> {
    v.as_deref().map(formula_safe).unwrap_or_default()
}

/// Writes the rows as CSV with a header; every text cell formula-safe.
pub fn write_csv(rows: impl IntoRows, out: impl Write) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    let mut n = 0;
    rows(&mut |row: Row| {
        w.write_record(
            [
                Cow::Owned(row.seq.to_string()),
                formula_safe(&row.kind),
                formula_safe(&row.value),
                Cow::Borrowed(row.action),
                Cow::Borrowed(row.state),
                Cow::Owned(row.attempts.to_string()),
                Cow::Owned(row.http_status.map(|s| s.to_string()).unwrap_or_default()),
                opt(&row.error_code),
                opt(&row.error_message),
                opt(&row.request_id),
                opt(&row.first_attempt_at),
                opt(&row.last_attempt_at),
                formula_safe(&row.origin),
            ]
            .iter()
            .map(|c| c.as_bytes()),
        )?;
        n += 1;
        Ok(())
    })?;
    w.flush()?;
    Ok(n)
}

/// Writes `{"results": [row, ...]}`, a row a line; values as they are (JSON has no formulas).
pub fn write_json(rows: impl IntoRows, mut out: impl Write) -> anyhow::Result<u64> {
    write!(out, "{{\"results\": [")?;
    let mut n = 0u64;
    rows(&mut |row: Row| {
        write!(
            out,
            "{}\n  {}",
            if n == 0 { "" } else { "," },
            serde_json::to_string(&row)?
        )?;
        n += 1;
        Ok(())
    })?;
    writeln!(out, "{}]}}", if n == 0 { "" } else { "\n" })?;
    Ok(n)
}

/// A stream of rows: a writer calls it once with a sink that takes each row in turn.
pub trait IntoRows:
    FnOnce(&mut dyn FnMut(Row) -> anyhow::Result<()>) -> anyhow::Result<()>
{
}
impl<F: FnOnce(&mut dyn FnMut(Row) -> anyhow::Result<()>) -> anyhow::Result<()>> IntoRows for F {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::RedactLevel;
    use crate::state::ItemState;
    use crate::state::testing::stored_item as item;

    fn rows(items: Vec<ResultItem>, masker: &Masker) -> Vec<Row> {
        items.iter().map(|r| Row::new(r, masker)).collect()
    }

    fn failed(seq: u64, id: &str, error: &str, status: u16) -> ResultItem {
        let mut stored = item(seq, id, ItemState::Failed);
        stored.journal.last_error = Some(error.into());
        stored.journal.last_status = Some(status);
        stored.journal.request_id = Some(format!("req-{seq}"));
        ResultItem {
            stored,
            updated_at: Some(1_700_000_000),
            first_attempt_at: Some(1_699_999_990),
        }
    }

    #[test]
    fn segment_error_code_and_message_are_split() {
        assert_eq!(
            split_error(Some("400 unsupported_eid_type: no such type"), Some(400)),
            (
                Some("unsupported_eid_type".into()),
                Some("no such type".into())
            )
        );
        // A transient fault's text is all message.
        assert_eq!(
            split_error(Some("timed out after 30s"), None),
            (None, Some("timed out after 30s".into()))
        );
        // A status that does not match the text's is not taken for a code.
        assert_eq!(
            split_error(Some("400 bad: x"), Some(503)),
            (None, Some("400 bad: x".into()))
        );
        assert_eq!(split_error(None, Some(200)), (None, None));
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(formula_safe(bad), format!("'{bad}"), "{bad:?}");
        }
        for fine in ["a=1", "x@y.com", "", "'quoted"] {
            assert_eq!(formula_safe(fine), fine);
        }
    }

    #[test]
    fn csv_rows_carry_the_journal_and_neutralise_injection() {
        let masker = Masker::new(None, vec![7; 32]);
        let mut done = ResultItem {
            stored: item(1, "=HYPERLINK(\"http://x\")@x.com", ItemState::Done),
            updated_at: Some(1_700_000_000),
            first_attempt_at: Some(1_700_000_000),
        };
        done.stored.journal.request_id = Some("@req".into());
        let rows = rows(
            vec![
                done,
                failed(2, "+1@x.com", "400 unsupported_eid_type: -bad type", 400),
            ],
            &masker,
        );
        let mut out = Vec::new();
        let n = write_csv(|f| rows.into_iter().try_for_each(f), &mut out).expect("write");
        assert_eq!(n, 2);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "seq,type,value,action,state,attempts,http_status,error_code,error_message,request_id,first_attempt_at,last_attempt_at,origin\n\
             1,email,\"'=HYPERLINK(\"\"http://x\"\")@x.com\",delete,done,1,200,,,'@req,2023-11-14T22:13:20Z,2023-11-14T22:13:20Z,m.yaml:1:1\n\
             2,email,'+1@x.com,delete,failed,1,400,unsupported_eid_type,'-bad type,req-2,2023-11-14T22:13:10Z,2023-11-14T22:13:20Z,m.yaml:1:1\n"
        );
    }

    #[test]
    fn values_are_masked_unless_revealed() {
        let masker = Masker::new(Some(RedactLevel::Preview), vec![7; 32]);
        let row = Row::new(&failed(3, "jane@import.invalid", "x", 500), &masker);
        assert!(
            row.value.starts_with("j•••@import.invalid ~"),
            "{}",
            row.value
        );
        assert!(!row.value.contains("jane"));
    }

    #[test]
    fn json_lists_every_row_and_never_sent_items_have_no_time() {
        let masker = Masker::new(None, vec![7; 32]);
        let mut pending = ResultItem {
            stored: item(4, "a@x.com", ItemState::Pending),
            updated_at: None,
            first_attempt_at: None,
        };
        pending.stored.attempts = 0;
        pending.stored.journal.last_status = None;
        let rows = rows(vec![pending], &masker);
        let mut out = Vec::new();
        write_json(|f| rows.into_iter().try_for_each(f), &mut out).expect("write");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        let row = &v["results"][0];
        assert_eq!(row["seq"], 4);
        assert_eq!(row["state"], "pending");
        assert_eq!(row["value"], "a@x.com");
        assert!(row["last_attempt_at"].is_null());
        assert!(row["first_attempt_at"].is_null());
        assert!(row["http_status"].is_null());
    }
}
