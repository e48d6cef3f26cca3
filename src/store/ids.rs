//! Identifiers: subject ids are chosen by the caller within a documented character set; image ids are
//! 128 random bits the service hands out, written as 32 lowercase hex digits.

use std::fmt;

use rand::RngCore;

/// Longest subject id, in bytes (= characters: the set is ASCII).
pub(crate) const MAX_ID_LEN: usize = 128;

/// Why a caller's identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("has {0:?}; only letters, digits, '.', '_' and '-' are allowed")]
    BadChar(char),
    #[error("is {0:?}, which names a directory, not a subject")]
    Dots(String),
}

/// A subject id: 1 to 128 of `[A-Za-z0-9._-]`, and not `.` or `..`. Safe in a URL path segment, a log
/// line and a file name, without escaping.
pub(crate) fn check_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(IdError::BadChar(c));
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if id == "." || id == ".." {
        return Err(IdError::Dots(id.to_string()));
    }
    Ok(())
}

/// An enrolled image's id. Random rather than sequential, so that replicas never collide and ids say
/// nothing about the catalogue's size; held as a `u128` so that the index spends 16 bytes on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ImageId(pub(crate) u128);

impl ImageId {
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(u128::from_be_bytes(bytes))
    }

    /// Parses the 32-hex-digit form; anything else is no image id.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(Self)
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids_follow_the_documented_set() {
        for good in ["a", "customer-42", "SKU_9.v2", &"x".repeat(MAX_ID_LEN)] {
            assert_eq!(check_id(good), Ok(()), "{good}");
        }
        assert_eq!(check_id(""), Err(IdError::Empty));
        assert_eq!(check_id(&"x".repeat(MAX_ID_LEN + 1)), Err(IdError::TooLong));
        assert_eq!(check_id("a/b"), Err(IdError::BadChar('/')));
        assert_eq!(check_id("é"), Err(IdError::BadChar('é')));
        assert_eq!(check_id("a b"), Err(IdError::BadChar(' ')));
        assert!(matches!(check_id(".."), Err(IdError::Dots(_))));
    }

    #[test]
    fn image_ids_round_trip_through_their_text() {
        let id = ImageId::random();
        let text = id.to_string();

        assert_eq!(text.len(), 32);
        assert_eq!(ImageId::parse(&text), Some(id));
        assert_eq!(ImageId::parse(&text.to_uppercase()), None);
        assert_eq!(ImageId::parse("abc"), None);
    }
}
