//! `since` values, as `memory search --since` and the `memory_search` tool take them: an
//! RFC 3339 time, or an age back from now like `30m`, `24h`, `7d`. One parser for both, so
//! a value means the same everywhere and a bad one is told apart from another.

use jiff::{SignedDuration, Timestamp};

/// What is wrong with a `since` value; each message says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinceError {
    #[error(
        "`since` is empty; give an RFC 3339 time like 2026-01-31T12:00:00Z or an age like 30m, 24h, 7d"
    )]
    Empty,
    #[error(
        "`{input}` is not a valid RFC 3339 time ({reason}); give one like 2026-01-31T12:00:00Z, between the years -9999 and 9999"
    )]
    BadTime { input: String, reason: String },
    #[error("`{input}` has no unit; say which: {input}s, {input}m, {input}h, {input}d or {input}w")]
    NoUnit { input: String },
    #[error("`{input}` has an unknown unit `{unit}`; use s, m, h, d or w, like 30m, 24h, 7d")]
    BadUnit { input: String, unit: String },
    #[error(
        "`{input}` reaches back before the earliest time shopfloor can count (the year -9999); give a smaller age"
    )]
    AgeOutOfRange { input: String },
    #[error(
        "`{input}` is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor an age (30m, 24h, 7d)"
    )]
    Unreadable { input: String },
}

/// The time `input` names, with ages counted back from `now`.
pub fn parse_since(input: &str, now: Timestamp) -> Result<Timestamp, SinceError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SinceError::Empty);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    if digits > 0 && unit.bytes().all(|b| b.is_ascii_alphabetic()) {
        return age(s, number, unit, now);
    }
    // A date's shape (`2026-...`, `...T12:00`): report what is wrong with it as a time.
    if digits > 0 && (unit.starts_with('-') || s.contains(':')) {
        return s.parse::<Timestamp>().map_err(|e| SinceError::BadTime {
            input: s.to_string(),
            reason: e.to_string(),
        });
    }
    Err(SinceError::Unreadable {
        input: s.to_string(),
    })
}

fn age(input: &str, number: &str, unit: &str, now: Timestamp) -> Result<Timestamp, SinceError> {
    let unit_secs: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => {
            return Err(SinceError::NoUnit {
                input: input.to_string(),
            });
        }
        _ => {
            return Err(SinceError::BadUnit {
                input: input.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    let out_of_range = || SinceError::AgeOutOfRange {
        input: input.to_string(),
    };
    // Digits only, so a parse failure is an overflow.
    let n: i64 = number.parse().map_err(|_| out_of_range())?;
    let secs = n.checked_mul(unit_secs).ok_or_else(out_of_range)?;
    now.checked_sub(SignedDuration::from_secs(secs))
        .map_err(|_| out_of_range())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-06-15T12:00:00Z".parse().unwrap()
    }

    fn parse(s: &str) -> Result<Timestamp, SinceError> {
        parse_since(s, now())
    }

    #[test]
    fn times_and_ages() {
        assert_eq!(
            parse("2026-01-31T12:00:00Z").unwrap(),
            "2026-01-31T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse(" 2026-01-31T12:00:00+02:00 ").unwrap(),
            "2026-01-31T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        for (age, secs) in [
            ("0s", 0),
            ("90s", 90),
            ("30m", 1800),
            ("24h", 86_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
        ] {
            assert_eq!(
                parse(age).unwrap(),
                now() - SignedDuration::from_secs(secs),
                "{age}"
            );
        }
    }

    #[test]
    fn a_time_out_of_range_or_malformed_is_reported_as_a_time() {
        for s in [
            "9999-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-31",
            "2026-01-31T25:00:00Z",
            "12:00",
        ] {
            let e = parse(s).unwrap_err();
            assert!(matches!(e, SinceError::BadTime { .. }), "{s}: {e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains("not a valid RFC 3339 time") && msg.contains(s),
                "{msg}"
            );
            assert!(!msg.contains("unit"), "{msg}");
        }
    }

    #[test]
    fn bad_ages_say_what_is_wrong() {
        assert_eq!(
            parse("7x").unwrap_err(),
            SinceError::BadUnit {
                input: "7x".into(),
                unit: "x".into()
            }
        );
        assert!(parse("7days").unwrap_err().to_string().contains("`days`"));
        assert!(matches!(
            parse("42").unwrap_err(),
            SinceError::NoUnit { .. }
        ));
        assert!(parse("42").unwrap_err().to_string().contains("42d"));
        for s in [
            "99999999999w",
            "9223372036854775807s",
            "9223372036854775808s",
            "99999999999999999999999999d",
            "1067519911w",
        ] {
            let e = parse(s).unwrap_err();
            assert!(matches!(e, SinceError::AgeOutOfRange { .. }), "{s}: {e:?}");
        }
        for s in ["yesterday", "-7d", "7 d", "d7", "1.5h", "７d"] {
            let e = parse(s).unwrap_err();
            assert!(matches!(e, SinceError::Unreadable { .. }), "{s}: {e:?}");
        }
        assert_eq!(parse("  ").unwrap_err(), SinceError::Empty);
    }
}
