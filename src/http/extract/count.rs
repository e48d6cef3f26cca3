//! Counts in requests (`k`, `page`, `page_size`, `max_cluster`): JSON Schema's `integer` is any number
//! without a fractional part, so the document promises that `61.0` and `6.1e1` are a count as `61` is,
//! in a JSON body and in a form field alike; each count is then checked against its range.

use serde::{Deserialize, Deserializer};

use crate::http::problem::error::ApiError;

/// An optional count in a JSON body, for serde's `deserialize_with`: a whole number >= 0 (a huge one
/// saturates, and the caller's range check refuses it).
pub(crate) fn optional_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    number
        .as_u64()
        .or_else(|| number.as_f64().and_then(whole))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number >= 0, got {number}")))
}

/// A count written in a form field, or `None` when the text is no whole number >= 0.
pub(crate) fn count_from_text(text: &str) -> Option<u64> {
    let text = text.trim();
    text.parse::<u64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().and_then(whole))
}

/// `value` (`default` when absent), refused outside `range`.
pub(crate) fn within(
    name: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ApiError> {
    let value = value.unwrap_or(default);
    if !range.contains(&value) {
        return Err(ApiError::InvalidRequest(format!(
            "{name} must be from {} to {}, got {value}",
            range.start(),
            range.end()
        )));
    }
    Ok(value)
}

fn whole(value: f64) -> Option<u64> {
    (value.fract() == 0.0 && value >= 0.0).then(|| value.min(u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Counted {
        #[serde(default, deserialize_with = "optional_count")]
        n: Option<u64>,
    }

    #[test]
    fn any_whole_number_is_a_count() {
        let n = |text: &str| serde_json::from_str::<Counted>(&format!(r#"{{"n": {text}}}"#)).map(|c| c.n);
        for (text, expected) in [("61", 61), ("61.0", 61), ("6.1e1", 61), ("0", 0), ("1e30", u64::MAX)] {
            assert_eq!(n(text).unwrap(), Some(expected), "{text}");
            assert_eq!(count_from_text(text), Some(expected), "{text}");
        }
        assert_eq!(n("null").unwrap(), None);
        assert_eq!(serde_json::from_str::<Counted>("{}").unwrap().n, None);
        for text in ["61.5", "-1", "-1.0", "NaN"] {
            assert!(n(text).is_err(), "{text}");
            assert_eq!(count_from_text(text), None, "{text}");
        }
        assert!(n("\"61\"").is_err(), "a string is no number in JSON");
        assert_eq!(count_from_text(" 7 "), Some(7));
        assert_eq!(count_from_text("seven"), None);
    }
}
