//! One emulator answer before it becomes an HTTP response: status, JSON body and the optional
//! `Retry-After`. Owns Segment's error envelope `{"error":{"code","message"}}`; knows no routing.

use serde_json::{Value, json};

/// An answer: status and body bytes (JSON, unless a fault truncated them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
    /// Seconds for a `Retry-After` header, when one is sent (never by default).
    pub retry_after: Option<u64>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(body).expect("a serde_json::Value always serialises"),
            retry_after: None,
        }
    }

    /// Segment's error envelope.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        let message: String = message.into();
        Reply::json(
            status,
            &json!({"error": {"code": code, "message": message}}),
        )
    }

    /// The `error.code` (or top-level `code`) of the body, for tests and the stats.
    #[cfg(test)]
    pub fn code(&self) -> Option<String> {
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        v.pointer("/error/code")
            .or_else(|| v.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The body parsed as JSON, for tests.
    #[cfg(test)]
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.body).expect("test reply bodies are JSON")
    }
}
