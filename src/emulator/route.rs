//! Reading the raw request target: the emulator's own percent-decoder, the `/v1` route table,
//! profile lookups and the query string of `GET .../external_ids`.
//!
//! This module must not use the client's encoder (`src/segment/`), `crate::model` parsing or the
//! `percent-encoding` crate: a decoding bug shared by the client and the emulator would pass every
//! test and still fail against Segment. It decodes the way Segment's servers do for path segments,
//! including the trap that a raw `+` means a space, so a client that forgets `%2B` misses.

use std::fmt;

/// Why a path segment or query component could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape at byte {0}")]
    BadEscape(usize),
    /// The decoded bytes are not UTF-8.
    #[error("the decoded bytes are not valid UTF-8")]
    NotUtf8,
}

/// Decodes one path segment or query component: `%XX` becomes the byte `0xXX`, `+` becomes a
/// space, everything else is kept. The result must be UTF-8.
pub fn percent_decode(raw: &str) -> Result<String, DecodeError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(DecodeError::BadEscape(i)),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Which of the two emulated endpoints a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET .../profiles/{lookup}/external_ids`.
    ExternalIds,
    /// `POST .../profiles/{lookup}/external_ids/delete`.
    Delete,
}

/// A `/v1` path, split and with its variable segments decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The endpoint the path names.
    pub endpoint: Endpoint,
    /// The decoded `{space}` segment.
    pub space: String,
    /// The decoded `{collection}` segment.
    pub collection: String,
    /// The decoded `{lookup}` segment (`TYPE:VALUE`, `use_...` or `segment_id:use_...`).
    pub lookup: String,
}

/// Why a `/v1` path is not a [`Route`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path does not name an emulated endpoint.
    #[error("route not found")]
    NotFound,
    /// A variable segment could not be decoded.
    #[error("the parameter `{name}` is not valid: {error}")]
    BadSegment {
        /// The segment's parameter name (`space`, `collection`, `id`).
        name: &'static str,
        /// What was wrong with it.
        error: DecodeError,
    },
}

impl Route {
    /// Parses the raw (still percent-encoded) request path.
    pub fn parse(raw_path: &str) -> Result<Route, RouteError> {
        let segments: Vec<&str> = raw_path.split('/').collect();
        let endpoint = match segments.as_slice() {
            [
                "",
                "v1",
                "spaces",
                _,
                "collections",
                _,
                "profiles",
                _,
                "external_ids",
                rest @ ..,
            ] => match rest {
                [] => Endpoint::ExternalIds,
                ["delete"] => Endpoint::Delete,
                _ => return Err(RouteError::NotFound),
            },
            _ => return Err(RouteError::NotFound),
        };
        let decode = |name: &'static str, raw: &str| {
            if raw.is_empty() {
                return Err(RouteError::NotFound);
            }
            percent_decode(raw).map_err(|error| RouteError::BadSegment { name, error })
        };
        Ok(Route {
            endpoint,
            space: decode("space_id", segments[3])?,
            collection: decode("collection", segments[5])?,
            lookup: decode("id", segments[7])?,
        })
    }
}

/// How a request names a profile, after decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Segment's own profile id: a bare `use_...` or `segment_id:use_...`.
    SegmentId(String),
    /// Any external identifier, `TYPE:VALUE` split at the first colon.
    External {
        /// The identifier type, byte for byte.
        kind: String,
        /// The identifier value, byte for byte.
        id: String,
    },
}

impl Lookup {
    /// Parses a decoded lookup segment; `None` when it names no identifier at all.
    pub fn parse(decoded: &str) -> Option<Lookup> {
        match decoded.split_once(':') {
            Some((_, "")) | Some(("", _)) => None,
            Some(("segment_id", id)) => Some(Lookup::SegmentId(id.to_owned())),
            Some((kind, id)) => Some(Lookup::External {
                kind: kind.to_owned(),
                id: id.to_owned(),
            }),
            None if decoded.starts_with("use_") && decoded.len() > 4 => {
                Some(Lookup::SegmentId(decoded.to_owned()))
            }
            None => None,
        }
    }

    /// The identifier type the lookup uses (`segment_id` for segment ids).
    pub fn kind(&self) -> &str {
        match self {
            Lookup::SegmentId(_) => "segment_id",
            Lookup::External { kind, .. } => kind,
        }
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::SegmentId(id) => f.write_str(id),
            Lookup::External { kind, id } => write!(f, "{kind}:{id}"),
        }
    }
}

/// The largest page `GET .../external_ids` serves (segment-docs PR #3091).
pub const MAX_PAGE: usize = 25;
/// The page size when the request has no `limit`.
pub const DEFAULT_PAGE: usize = 25;

/// The validated query of `GET .../external_ids`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size, `1..=MAX_PAGE`.
    pub limit: usize,
    /// The opaque cursor of a previous page, if any.
    pub next: Option<String>,
    /// Only identifiers of these types, if given.
    pub include: Option<Vec<String>>,
}

impl ListQuery {
    /// Parses and validates the raw query string. The error is Segment's `validation_error` message.
    pub fn parse(raw: Option<&str>) -> Result<ListQuery, String> {
        let mut query = ListQuery {
            limit: DEFAULT_PAGE,
            ..ListQuery::default()
        };
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(raw_name)
                .map_err(|e| format!("The query string is not valid: {e}."))?;
            let value = percent_decode(raw_value)
                .map_err(|e| format!("The parameter `{name}` is not valid: {e}."))?;
            match name.as_str() {
                "limit" => query.limit = parse_limit(&value)?,
                "next" => query.next = Some(value).filter(|v| !v.is_empty()),
                "include" => {
                    let kinds: Vec<String> = value
                        .split(',')
                        .filter(|k| !k.is_empty())
                        .map(str::to_owned)
                        .collect();
                    query.include = Some(kinds).filter(|k| !k.is_empty());
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

fn parse_limit(value: &str) -> Result<usize, String> {
    let bad = || format!("The parameter `limit` must be a number between 1 and {MAX_PAGE}.");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_table() {
        let cases: &[(&str, Result<&str, DecodeError>)] = &[
            ("plain", Ok("plain")),
            ("%2B15550123", Ok("+15550123")),
            ("+15550123", Ok(" 15550123")),
            ("a%2Fb", Ok("a/b")),
            ("100%25", Ok("100%")),
            ("%2b%2f", Ok("+/")),
            ("user_id%3Au1", Ok("user_id:u1")),
            ("caf%C3%A9", Ok("café")),
            ("%E2%9C%93", Ok("✓")),
            ("a%20b", Ok("a b")),
            ("", Ok("")),
            ("%", Err(DecodeError::BadEscape(0))),
            ("ab%2", Err(DecodeError::BadEscape(2))),
            ("%zz", Err(DecodeError::BadEscape(0))),
            ("%%41", Err(DecodeError::BadEscape(0))),
            ("%C3", Err(DecodeError::NotUtf8)),
            ("%FF", Err(DecodeError::NotUtf8)),
        ];
        for (raw, want) in cases {
            let got = percent_decode(raw);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                *want,
                "decoding {raw:?}"
            );
        }
    }

    #[test]
    fn routes() {
        let base = "/v1/spaces/spa_1/collections/users/profiles";
        let r = Route::parse(&format!("{base}/user_id:a%2Fb/external_ids")).expect("route");
        assert_eq!(r.endpoint, Endpoint::ExternalIds);
        assert_eq!(r.space, "spa_1");
        assert_eq!(r.collection, "users");
        assert_eq!(r.lookup, "user_id:a/b");
        let d = Route::parse(&format!("{base}/user_id:a+b/external_ids/delete")).expect("route");
        assert_eq!(d.endpoint, Endpoint::Delete);
        assert_eq!(d.lookup, "user_id:a b");
        // A raw `/` inside the value splits the path: the route no longer matches.
        assert_eq!(
            Route::parse(&format!("{base}/user_id:a/b/external_ids")),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            Route::parse(&format!("{base}//external_ids")),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            Route::parse(&format!("{base}/u/traits")),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            Route::parse(&format!("{base}/user_id:%zz/external_ids")),
            Err(RouteError::BadSegment {
                name: "id",
                error: DecodeError::BadEscape(8)
            })
        );
        assert_eq!(
            Route::parse(&format!("{base}/user_id:u1/external_ids/")),
            Err(RouteError::NotFound)
        );
    }

    #[test]
    fn lookups() {
        let ext = |k: &str, v: &str| {
            Some(Lookup::External {
                kind: k.into(),
                id: v.into(),
            })
        };
        let cases: &[(&str, Option<Lookup>)] = &[
            ("user_id:u1", ext("user_id", "u1")),
            ("email:a:b@x.com", ext("email", "a:b@x.com")),
            ("User_Id:U1", ext("User_Id", "U1")),
            ("use_2Xa", Some(Lookup::SegmentId("use_2Xa".into()))),
            (
                "segment_id:use_2Xa",
                Some(Lookup::SegmentId("use_2Xa".into())),
            ),
            ("use_", None),
            ("u1", None),
            ("user_id:", None),
            (":u1", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(&Lookup::parse(text), want, "lookup {text:?}");
        }
    }

    #[test]
    fn list_queries() {
        let q = ListQuery::parse(None).expect("empty");
        assert_eq!(q.limit, DEFAULT_PAGE);
        let q = ListQuery::parse(Some(
            "limit=3&include=user_id,email&next=map_x&verbose=true",
        ))
        .expect("full");
        assert_eq!(q.limit, 3);
        assert_eq!(q.next.as_deref(), Some("map_x"));
        assert_eq!(
            q.include,
            Some(vec!["user_id".to_owned(), "email".to_owned()])
        );
        assert_eq!(
            ListQuery::parse(Some("include=user_id%2Cemail"))
                .expect("encoded comma")
                .include
                .map(|k| k.len()),
            Some(2)
        );
        for bad in [
            "limit=0",
            "limit=26",
            "limit=100",
            "limit=-1",
            "limit=x",
            "limit=",
            "limit=%zz",
        ] {
            assert!(
                ListQuery::parse(Some(bad)).is_err(),
                "{bad} must be refused"
            );
        }
        assert_eq!(ListQuery::parse(Some("limit=25")).expect("max").limit, 25);
        assert_eq!(
            ListQuery::parse(Some("next=")).expect("empty next").next,
            None
        );
    }
}
