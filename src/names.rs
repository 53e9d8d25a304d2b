//! The names that arrive in URLs and request bodies (their rules are in the README's token API):
//! an account's public id, a stream name and a multisource `sourceId`. Each is parsed once, where
//! it enters, into a type that can only hold a valid value; past the edge nothing checks them.
//!
//! They hold an `Arc<str>`, so the media engine can keep and clone them without copying.

use std::{fmt, ops::Deref, sync::Arc};

/// Longest stream name (and `sourceId`), in characters.
pub const STREAM_NAME_MAX_CHARS: usize = 64;
/// Longest public account id, in characters.
pub const ACCOUNT_ID_MAX_CHARS: usize = 32;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

name_type! {
    /// A stream name: 1–64 characters of `A-Z a-z 0-9 _ - .`; case-sensitive.
    StreamName
}

name_type! {
    /// A multisource `sourceId`: the same characters and length as a stream name.
    SourceId
}

name_type! {
    /// An account's public id, as it appears in stream URLs: 1–32 lowercase letters and digits.
    AccountId
}

impl StreamName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        check_name(raw, "stream name").map(|()| Self(raw.into()))
    }
}

impl SourceId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        check_name(raw, "sourceId").map(|()| Self(raw.into()))
    }
}

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= ACCOUNT_ID_MAX_CHARS
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(raw.into()))
        } else {
            Err(format!("{:?} is not an account id", truncate(raw)))
        }
    }
}

/// The stream name rules, shared by `sourceId`; `what` names the field in the message.
fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("a {what} cannot be empty"));
    }
    if name.chars().count() > STREAM_NAME_MAX_CHARS {
        return Err(format!("{what} {:?} is longer than {STREAM_NAME_MAX_CHARS} characters", truncate(name)));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("{what} {:?} contains {bad:?}; use only letters, digits, _ - .", truncate(name)));
    }
    Ok(())
}

/// Enough of a rejected value to recognise it in a message.
fn truncate(raw: &str) -> &str {
    match raw.char_indices().nth(STREAM_NAME_MAX_CHARS + 16) {
        Some((i, _)) => &raw[..i],
        None => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_rules() {
        for good in ["a", "Main_1", "a.b-c", &"x".repeat(64)] {
            assert_eq!(StreamName::parse(good).unwrap().as_str(), good);
        }
        for (bad, why) in [("", "empty"), ("a b", "contains ' '"), ("ä", "contains"), (&"x".repeat(65), "longer")] {
            let err = StreamName::parse(bad).unwrap_err();
            assert!(err.contains(why) && err.contains("stream name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn source_ids_follow_the_stream_name_rules_and_say_so() {
        assert!(SourceId::parse("cam-2").is_ok());
        let err = SourceId::parse("cam/2").unwrap_err();
        assert!(err.starts_with("sourceId") && err.contains("'/'"), "{err}");
    }

    #[test]
    fn account_ids_are_short_lowercase_letters_and_digits() {
        assert!(AccountId::parse("ab12").is_ok());
        assert!(AccountId::parse(&"a".repeat(32)).is_ok());
        for bad in ["", "Ab", "a-b", &"a".repeat(33)] {
            assert!(AccountId::parse(bad).unwrap_err().contains("not an account id"), "{bad:?}");
        }
    }

    #[test]
    fn a_long_rejected_value_is_shortened_in_the_message() {
        let err = StreamName::parse(&"y".repeat(10_000)).unwrap_err();
        assert!(err.len() < 200, "{err}");
    }
}
