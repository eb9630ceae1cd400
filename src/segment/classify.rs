//! Pure classification of Segment's responses (docs/ARCHITECTURE.md, *The journal*): HTTP status
//! plus the `error.code` of the envelope decide; message text never does (its casing changed
//! between doc revisions). No I/O here, so every row of the table is a unit test.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::{DeleteOutcome, Fault, ReadPage};
use crate::model::Identifier;

/// The longest `Retry-After` idprune honours; a larger value is capped, not obeyed blindly.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Envelope {
    error: Option<ErrorBody>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

/// Reads `error.code`/`error.message` (or top-level `code`/`message`) from a body.
fn error_code(body: &[u8]) -> Option<(String, String)> {
    let env: Envelope = serde_json::from_slice(body).ok()?;
    let (code, message) = match env.error {
        Some(e) => (e.code, e.message),
        None => (env.code, env.message),
    };
    Some((code?, message.unwrap_or_default()))
}

/// Parses `Retry-After` (delta-seconds or an HTTP date), capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(header: &str, now: SystemTime) -> Option<Duration> {
    let header = header.trim();
    let wait = match header.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(header).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn transient(status: u16, retry_after: Option<Duration>) -> Fault {
    Fault::Retryable {
        reason: if status == 429 {
            "429 rate_limit_error".to_owned()
        } else {
            format!("{status} server error")
        },
        retry_after,
        throttled: status == 429,
    }
}

fn malformed(status: u16) -> Fault {
    Fault::Retryable {
        reason: format!("{status} with a malformed body"),
        retry_after: None,
        throttled: false,
    }
}

/// The most characters of a server's error code or message idprune repeats.
const MAX_MESSAGE_CHARS: usize = 300;

/// A value from the server made safe to print: controls and newlines escaped (a message must
/// not close a fence in a job summary or drive a terminal) and cut to [`MAX_MESSAGE_CHARS`].
fn outside(value: &str) -> String {
    let mut cut: String = value.chars().take(MAX_MESSAGE_CHARS).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    crate::text::clean(&cut)
}

/// A redirect: never followed (the token is not replayed to another place), and a fault of the
/// whole run, since every request goes to the same origin.
fn redirect(status: u16) -> Fault {
    Fault::Space {
        status,
        code: "redirect".to_owned(),
        message: "the API answered with a redirect, which idprune does not follow so the token is never sent elsewhere; check that `IDPRUNE_API_URL` (or --region) names Segment's API host".to_owned(),
    }
}

fn refusal(status: u16, body: &[u8]) -> Fault {
    let (code, message) = error_code(body).unwrap_or_else(|| ("unknown".into(), String::new()));
    let (code, message) = (outside(&code), outside(&message));
    if matches!(status, 401 | 403) || code == "source_id_not_found" {
        Fault::Space {
            status,
            code,
            message,
        }
    } else {
        Fault::Permanent {
            status,
            code,
            message,
        }
    }
}

/// Classifies the answer to a delete call.
pub fn delete(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<DeleteOutcome, Fault> {
    match status {
        // The status decides: a 200 with an odd body still means the identifier is gone.
        200..=299 => Ok(DeleteOutcome::Deleted),
        404 => match error_code(body) {
            Some((code, _)) if code == "eid_not_found" => Ok(DeleteOutcome::IdentifierNotFound),
            Some((code, _)) if code == "not_found" => Ok(DeleteOutcome::ProfileNotFound),
            Some(_) => Err(refusal(status, body)),
            None => Err(malformed(status)),
        },
        300..=399 => Err(redirect(status)),
        408 | 429 | 500..=599 => Err(transient(status, retry_after)),
        _ => Err(refusal(status, body)),
    }
}

#[derive(Deserialize)]
struct Page {
    data: Vec<WireId>,
    #[serde(default)]
    cursor: Option<Cursor>,
}

#[derive(Deserialize)]
struct WireId {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

#[derive(Deserialize)]
struct Cursor {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next: Option<String>,
}

/// Classifies the answer to an `external_ids` read.
pub fn read(status: u16, body: &[u8], retry_after: Option<Duration>) -> Result<ReadPage, Fault> {
    match status {
        200 => {
            let page: Page = serde_json::from_slice(body).map_err(|_| malformed(status))?;
            let next = page
                .cursor
                .filter(|c| c.has_more)
                .and_then(|c| c.next)
                .filter(|n| !n.is_empty());
            let ids = page
                .data
                .into_iter()
                .map(|w| Identifier::new(w.kind, w.id))
                .collect();
            Ok(ReadPage::Found { ids, next })
        }
        404 => match error_code(body) {
            Some((code, _)) if code == "not_found" => Ok(ReadPage::NotFound),
            Some(_) => Err(refusal(status, body)),
            None => Err(malformed(status)),
        },
        300..=399 => Err(redirect(status)),
        408 | 429 | 500..=599 => Err(transient(status, retry_after)),
        _ => Err(refusal(status, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(code: &str) -> Vec<u8> {
        format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#).into_bytes()
    }

    #[test]
    fn delete_table() {
        use DeleteOutcome::*;
        assert_eq!(delete(200, b"{}", None), Ok(Deleted));
        assert_eq!(delete(200, b"garbage", None), Ok(Deleted));
        assert_eq!(
            delete(404, &env("eid_not_found"), None),
            Ok(IdentifierNotFound)
        );
        assert_eq!(delete(404, &env("not_found"), None), Ok(ProfileNotFound));
        assert!(matches!(
            delete(404, &env("source_id_not_found"), None),
            Err(Fault::Space { .. })
        ));
        assert!(matches!(
            delete(404, b"<html>", None),
            Err(Fault::Retryable { .. })
        ));
        assert!(matches!(
            delete(400, &env("bad_request"), None),
            Err(Fault::Permanent { status: 400, .. })
        ));
        assert!(matches!(
            delete(401, &env("unauthorized"), None),
            Err(Fault::Space { status: 401, .. })
        ));
        assert!(matches!(
            delete(403, b"", None),
            Err(Fault::Space { status: 403, .. })
        ));
        assert!(matches!(
            delete(429, &env("rate_limit_error"), Some(Duration::from_secs(2))),
            Err(Fault::Retryable {
                throttled: true,
                retry_after: Some(_),
                ..
            })
        ));
        assert!(matches!(
            delete(302, b"", None),
            Err(Fault::Space { status: 302, ref code, .. }) if code == "redirect"
        ));
        assert!(matches!(
            read(301, b"<html>", None),
            Err(Fault::Space { status: 301, ref code, .. }) if code == "redirect"
        ));
        assert!(matches!(
            delete(503, b"", None),
            Err(Fault::Retryable {
                throttled: false,
                ..
            })
        ));
    }

    #[test]
    fn read_pages() {
        let body = br#"{"data":[{"type":"email","id":"a@x.com","source_id":"s"}],
            "cursor":{"url":"/x","has_more":true,"next":"c1"}}"#;
        assert_eq!(
            read(200, body, None),
            Ok(ReadPage::Found {
                ids: vec![Identifier::new("email", "a@x.com")],
                next: Some("c1".into())
            })
        );
        let last = br#"{"data":[],"cursor":{"has_more":false,"next":"c9"}}"#;
        assert_eq!(
            read(200, last, None),
            Ok(ReadPage::Found {
                ids: vec![],
                next: None
            })
        );
        assert_eq!(read(404, &env("not_found"), None), Ok(ReadPage::NotFound));
        assert!(matches!(
            read(200, b"{\"data\":", None),
            Err(Fault::Retryable { .. })
        ));
        assert!(matches!(
            read(401, &env("authentication_error"), None),
            Err(Fault::Space { .. })
        ));
    }

    #[test]
    fn outside_messages_are_escaped_and_cut() {
        let body =
            br#"{"error":{"code":"bad\n~~~~","message":"line one\n~~~~\n# owned\u001b[2J"}}"#;
        let Err(Fault::Permanent { code, message, .. }) = delete(400, body, None) else {
            panic!("a 400 is a permanent refusal")
        };
        assert_eq!(code, "bad\\n~~~~");
        assert_eq!(message, "line one\\n~~~~\\n# owned\\u{1b}[2J");
        assert!(!message.contains('\n'));
        let long = format!(
            r#"{{"error":{{"code":"c","message":"{}"}}}}"#,
            "x".repeat(10_000)
        );
        let Err(Fault::Permanent { message, .. }) = delete(400, long.as_bytes(), None) else {
            panic!("a 400 is a permanent refusal")
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("9999", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(5)));
        assert_eq!(retry_after("soon", now), None);
    }
}
