//! Unix seconds (the database's unit) to and from RFC 3339 (the API's).

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// `2026-11-22T03:25:00Z`.
pub fn to_rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses RFC 3339 (any offset) into unix seconds.
pub fn from_rfc3339(text: &str) -> Result<i64, String> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("{text:?} is not an RFC 3339 date-time such as 2030-01-31T18:00:00Z"))
}

/// A `datetime-local` value read as UTC (`2030-01-31T18:00`, seconds optional) to RFC 3339;
/// empty means no time.
pub fn datetime_local_utc_to_rfc3339(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let with_seconds = if text.len() == "2030-01-31T18:00".len() { format!("{text}:00") } else { text.to_owned() };
    from_rfc3339(&format!("{with_seconds}Z"))
        .map(|unix| Some(to_rfc3339(unix)))
        .map_err(|_| format!("{text:?} is not a date and time such as 2030-01-31T18:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_accepts_offsets() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        let t = from_rfc3339("2030-01-31T18:00:00Z").unwrap();
        assert_eq!(to_rfc3339(t), "2030-01-31T18:00:00Z");
        assert_eq!(from_rfc3339("2030-01-31T19:00:00+01:00").unwrap(), t);
        assert!(from_rfc3339("tomorrow").is_err());
        assert!(from_rfc3339("2030-01-31").is_err());
    }

    #[test]
    fn datetime_local_values_are_utc() {
        assert_eq!(datetime_local_utc_to_rfc3339("2030-01-31T18:00").unwrap().unwrap(), "2030-01-31T18:00:00Z");
        assert_eq!(datetime_local_utc_to_rfc3339("2030-01-31T18:00:30").unwrap().unwrap(), "2030-01-31T18:00:30Z");
        assert_eq!(datetime_local_utc_to_rfc3339(" ").unwrap(), None);
        assert!(datetime_local_utc_to_rfc3339("31/01/2030").is_err());
    }
}
