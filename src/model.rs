//! The domain nouns every pipeline step shares: an [`Identifier`] (`type` + `id`, exact bytes) and a
//! profile [`Lookup`]. Parsing of the `TYPE:VALUE` notation lives here so the manifest, the plan,
//! the renderer and the state file agree on it. This module does no I/O and knows nothing of HTTP.

use std::fmt;

/// The identifier type Segment gives to user ids; the only lookup the delete endpoint accepts.
pub const USER_ID: &str = "user_id";
/// The identifier type of account (group) profiles; the delete API refuses it.
pub const GROUP_ID: &str = "group_id";
/// The prefix of Segment's own profile ids (`use_...`), which may be used as a bare lookup.
pub const SEGMENT_ID_PREFIX: &str = "use_";

/// One external identifier of a profile, exactly as Segment stores it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier {
    /// The identifier type (`email`, `anonymous_id`, `user_id`, a custom type, ...).
    pub kind: String,
    /// The identifier value, byte for byte.
    pub id: String,
}

impl Identifier {
    /// Builds an identifier from its type and value.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
        }
    }

    /// Parses `TYPE:VALUE`, splitting at the first colon. The value keeps its exact bytes.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let (kind, id) = text.split_once(':').ok_or(ParseError::MissingColon)?;
        if kind.is_empty() {
            return Err(ParseError::EmptyType);
        }
        if id.is_empty() {
            return Err(ParseError::EmptyValue);
        }
        if !kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(ParseError::BadType(kind.to_owned()));
        }
        Ok(Self::new(kind, id))
    }

    /// True for `user_id` identifiers.
    pub fn is_user_id(&self) -> bool {
        self.kind == USER_ID
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

/// How a manifest entry names the profile to clean.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lookup {
    /// Segment's own profile id (`use_...`).
    SegmentId(String),
    /// Any external identifier of the profile (`user_id:V`, `email:V`, ...).
    External(Identifier),
}

impl Lookup {
    /// Parses a lookup: a bare `use_...` segment id, `segment_id:use_...`, or any `TYPE:VALUE`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if !text.contains(':') && text.starts_with(SEGMENT_ID_PREFIX) {
            return Self::parse(&format!("segment_id:{text}"));
        }
        let ident = Identifier::parse(text)?;
        if ident.kind == "segment_id" {
            // Segment ids are `use_` and letters or digits; anything else (`..`, `/`) could
            // not name a profile and would be rewritten by URL normalisation.
            let plain = ident
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
            if !plain {
                return Err(ParseError::BadSegmentId(ident.id));
            }
            return Ok(Self::SegmentId(ident.id));
        }
        Ok(Self::External(ident))
    }

    /// The value a person typed, without its type.
    pub fn value(&self) -> &str {
        match self {
            Self::SegmentId(v) => v,
            Self::External(i) => &i.id,
        }
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SegmentId(v) => f.write_str(v),
            Self::External(i) => i.fmt(f),
        }
    }
}

/// Why a `TYPE:VALUE` text is not an identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No colon at all.
    #[error("expected `TYPE:VALUE` (for example `email:a@example.com`), found no colon")]
    MissingColon,
    /// Nothing before the colon.
    #[error("the identifier type before the colon is empty")]
    EmptyType,
    /// Nothing after the colon.
    #[error("the identifier value after the colon is empty")]
    EmptyValue,
    /// A segment id with characters Segment ids never hold.
    #[error("segment id `{0}` may only hold letters, digits, `_` and `-`")]
    BadSegmentId(String),
    /// A type with characters Segment never uses in type names.
    #[error("identifier type `{0}` may only hold letters, digits, `_`, `.` and `-`")]
    BadType(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_splits_at_first_colon() {
        let id = Identifier::parse("email:a:b@x.com").expect("valid");
        assert_eq!(id, Identifier::new("email", "a:b@x.com"));
        assert_eq!(Identifier::parse("nocolon"), Err(ParseError::MissingColon));
        assert_eq!(Identifier::parse(":v"), Err(ParseError::EmptyType));
        assert_eq!(Identifier::parse("email:"), Err(ParseError::EmptyValue));
        assert!(matches!(
            Identifier::parse("em ail:v"),
            Err(ParseError::BadType(_))
        ));
    }

    #[test]
    fn lookups() {
        assert_eq!(
            Lookup::parse("use_2Xa").expect("ok"),
            Lookup::SegmentId("use_2Xa".into())
        );
        assert_eq!(
            Lookup::parse("segment_id:use_2Xa").expect("ok"),
            Lookup::SegmentId("use_2Xa".into())
        );
        assert!(matches!(
            Lookup::parse("segment_id:.."),
            Err(ParseError::BadSegmentId(_))
        ));
        assert!(matches!(
            Lookup::parse("use_a/b"),
            Err(ParseError::BadSegmentId(_))
        ));
        assert_eq!(
            Lookup::parse("user_id:u 1").expect("ok"),
            Lookup::External(Identifier::new("user_id", "u 1"))
        );
    }
}
