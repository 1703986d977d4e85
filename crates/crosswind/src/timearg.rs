//! `--since` / `--until` values: RFC 3339 times or durations back from now (`24h`, `7d`).

use chrono::{DateTime, Utc};

/// Parses `T` into epoch milliseconds, relative durations counted back from `now_ms`.
pub fn parse_time(value: &str, now_ms: i64) -> Result<i64, String> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    let ms = duration_ms(v).map_err(|e| {
        if e.starts_with("invalid duration unit") {
            e
        } else {
            format!("invalid time {value:?}: expected RFC 3339 or a duration like 24h, 7d")
        }
    })?;
    Ok(now_ms - ms)
}

/// A duration such as `90s`, `5m`, `24h`, `7d`, `2w`.
pub fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let ms = duration_ms(value.trim())?;
    Ok(std::time::Duration::from_millis(ms.max(0) as u64))
}

fn duration_ms(v: &str) -> Result<i64, String> {
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {v:?}: expected e.g. 90s, 5m, 24h, 7d"))?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration unit in {v:?}: use s, m, h, d or w"
            ));
        }
    };
    Ok(n.saturating_mul(unit_ms))
}

/// Epoch milliseconds as RFC 3339 with millisecond precision.
pub fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_durations() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_time("2001-09-09T01:46:40Z", 0), Ok(now));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400_000));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(parse_time("90s", now), Ok(now - 90_000));
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("5y", now).is_err());
        assert_eq!(format_time(now), "2001-09-09T01:46:40.000Z");
    }
}
