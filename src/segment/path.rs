//! Percent-encoding of the profile lookup path segment. Segment needs `+` as `%2B` and fails on
//! other raw non-alphanumeric characters (segment-api.md §2), so everything but RFC 3986's
//! unreserved characters is encoded: a value with `/`, `?`, `#`, `%`, spaces, `:` or non-ASCII
//! stays one path segment and reaches the right profile. The emulator has its own decoder on
//! purpose: a bug shared by both sides would pass every test.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::Lookup;

/// Every byte but `A-Z a-z 0-9 - . _ ~` is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes one value as a path segment.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The lookup as Segment's path segment: `TYPE:VALUE` with both parts encoded, or a bare segment id.
pub fn lookup_segment(lookup: &Lookup) -> String {
    match lookup {
        Lookup::SegmentId(id) => encode(id),
        Lookup::External(ident) => format!("{}:{}", encode(&ident.kind), encode(&ident.id)),
    }
}

/// The segment addressing a profile by `user_id` (the only form the delete endpoint accepts).
pub fn user_id_segment(user_id: &str) -> String {
    format!("user_id:{}", encode(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identifier;

    #[test]
    fn encodes_everything_but_unreserved() {
        let cases = [
            ("u_001", "u_001"),
            ("a+b", "a%2Bb"),
            ("a/b", "a%2Fb"),
            ("..", ".."),
            ("50%", "50%25"),
            ("q?x#y", "q%3Fx%23y"),
            ("a b:c", "a%20b%3Ac"),
            ("é", "%C3%A9"),
            ("~x-y.z", "~x-y.z"),
        ];
        for (raw, want) in cases {
            assert_eq!(encode(raw), want, "{raw}");
        }
    }

    #[test]
    fn lookup_segments() {
        let l = Lookup::External(Identifier::new("email", "a+b@x.com"));
        assert_eq!(lookup_segment(&l), "email:a%2Bb%40x.com");
        assert_eq!(lookup_segment(&Lookup::SegmentId("use_1".into())), "use_1");
        assert_eq!(user_id_segment("a/b"), "user_id:a%2Fb");
    }
}
