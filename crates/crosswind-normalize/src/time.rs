//! Timestamps as the sources write them, to epoch milliseconds UTC: RFC 3339 with any number of
//! fractional digits (`2020-05-20T18:19:04.423000Z`, `2025-01-15T14:20:35.4567890Z`), with a
//! `+00:00` offset, naive date-times read as UTC (Panther's `2025-01-15 14:20:35.456`), hours
//! written without their leading zero (`2022-09-09T8:48:50.361Z`), and the Azure portal's CSV
//! export form (`4/28/2021, 2:08:45.221 PM`).

use chrono::NaiveDateTime;

/// Epoch milliseconds for a timestamp in any of the accepted forms; fractions beyond
/// milliseconds are truncated. `None` when the text is not a valid date-time.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    parse_iso(s.as_bytes())
        .or_else(|| parse_unpadded_hour(s))
        .or_else(|| parse_portal(s))
}

/// `2022-09-09T8:48:50.361Z`: diagnostic-settings `UserRiskEvents` records write hours below
/// 10 without the leading zero.
fn parse_unpadded_hour(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let unpadded = b.len() > 12
        && matches!(b[10], b'T' | b't' | b' ')
        && b[11].is_ascii_digit()
        && b[12] == b':';
    if !unpadded {
        return None;
    }
    // Bytes 0..=10 are ASCII (checked above for byte 10, by the shape for the rest when it
    // parses), so 11 is a char boundary.
    let padded = format!("{}0{}", s.get(..11)?, s.get(11..)?);
    parse_iso(padded.as_bytes())
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = b.get(at..at + n)?;
    let mut v: i64 = 0;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn parse_iso(b: &[u8]) -> Option<i64> {
    // YYYY-MM-DD
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    // HH:MM:SS
    let hour = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let om = match b.len() - (i + 3) {
                0 => 0,
                2 => digits(b, i + 3, 2)?,
                3 if b[i + 3] == b':' => digits(b, i + 4, 2)?,
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'+' { secs } else { -secs }
        }
        Some(_) => return None,
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    Some(secs * 1000 + millis)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Azure portal's CSV export: `4/28/2021, 2:08:45.221 PM` (UTC, per the `[UTC]` header).
fn parse_portal(s: &str) -> Option<i64> {
    if !s.contains('/') {
        return None;
    }
    const FORMATS: [&str; 4] = [
        "%m/%d/%Y, %I:%M:%S%.f %p",
        "%m/%d/%Y %I:%M:%S%.f %p",
        "%m/%d/%Y, %H:%M:%S%.f",
        "%m/%d/%Y %H:%M:%S%.f",
    ];
    FORMATS.iter().find_map(|f| {
        NaiveDateTime::parse_from_str(s, f)
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    })
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp_ms;

    #[test]
    fn accepted_forms() {
        let base = 1_736_950_835_456; // 2025-01-15T14:20:35.456Z
        for s in [
            "2025-01-15T14:20:35.456Z",
            "2025-01-15T14:20:35.4567890Z",
            "2025-01-15T14:20:35.456+00:00",
            "2025-01-15T14:20:35.4567890+00:00",
            "2025-01-15 14:20:35.456",
            "2025-01-15 14:20:35.456789000",
            "2025-01-15T15:20:35.456+01:00",
            "2025-01-15T13:20:35.456-0100",
            " 2025-01-15T14:20:35.456Z ",
        ] {
            assert_eq!(parse_timestamp_ms(s), Some(base), "{s}");
        }
        assert_eq!(
            parse_timestamp_ms("2020-05-20T18:19:04.423000Z"),
            Some(1_589_998_744_423)
        );
        assert_eq!(
            parse_timestamp_ms("2022-11-10T16:24:34Z"),
            Some(1_668_097_474_000)
        );
        assert_eq!(
            parse_timestamp_ms("2020-05-20T18:19:04.4Z"),
            Some(1_589_998_744_400)
        );
        assert_eq!(
            parse_timestamp_ms("4/28/2021, 2:08:45.221 PM"),
            Some(1_619_618_925_221)
        );
        assert_eq!(
            parse_timestamp_ms("2025-01-15T4:20:35.456Z"),
            parse_timestamp_ms("2025-01-15T04:20:35.456Z")
        );
        assert_eq!(parse_timestamp_ms("1969-12-31T23:59:59Z"), Some(-1000));
        assert_eq!(
            parse_timestamp_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejected_forms() {
        for s in [
            "",
            "redacted",
            "...",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T14:20:35.Z",
            "2025-01-15T14:20:35Zjunk",
            "2025-01-15T14:20",
            "2025-01-15T4:20",
            "2025-01-15T:20:35Z",
            "2025-01-15",
            "١٢٣٤-01-15T14:20:35Z",
        ] {
            assert_eq!(parse_timestamp_ms(s), None, "{s}");
        }
    }
}
