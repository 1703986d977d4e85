//! Fast, allocation-light UTC time formatting (epoch ms → `2026-11-30T09:12:03Z`), exact for
//! the proleptic Gregorian calendar. The streaming generator formats millions of these.

pub(crate) const SEC: i64 = 1000;
pub(crate) const MIN: i64 = 60 * SEC;
pub(crate) const HOUR: i64 = 60 * MIN;
pub(crate) const DAY: i64 = 24 * HOUR;

/// Days since 1970-01-01 → (year, month 1–12, day 1–31). Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

fn push4(out: &mut String, v: i64) {
    let v = v.clamp(0, 9999) as u32;
    push2(out, v / 100);
    push2(out, v % 100);
}

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
}

fn parts(ms: i64) -> Parts {
    let days = ms.div_euclid(DAY);
    let rem = ms.rem_euclid(DAY) / SEC;
    let (y, mo, d) = civil_from_days(days);
    Parts {
        y,
        mo,
        d,
        h: (rem / 3600) as u32,
        mi: (rem / 60 % 60) as u32,
        s: (rem % 60) as u32,
    }
}

/// `2026-11-30T09:12:03Z`, appended to `out`.
pub(crate) fn push_iso(out: &mut String, ms: i64) {
    let p = parts(ms);
    push4(out, p.y);
    out.push('-');
    push2(out, p.mo);
    out.push('-');
    push2(out, p.d);
    out.push('T');
    push2(out, p.h);
    out.push(':');
    push2(out, p.mi);
    out.push(':');
    push2(out, p.s);
    out.push('Z');
}

pub(crate) fn iso(ms: i64) -> String {
    let mut s = String::with_capacity(20);
    push_iso(&mut s, ms);
    s
}

/// `20261130T0910Z`, as in CloudTrail log file names.
pub(crate) fn compact_minute(ms: i64) -> String {
    let p = parts(ms);
    let mut out = String::with_capacity(14);
    push4(&mut out, p.y);
    push2(&mut out, p.mo);
    push2(&mut out, p.d);
    out.push('T');
    push2(&mut out, p.h);
    push2(&mut out, p.mi);
    out.push('Z');
    out
}

/// `2026/11/30`, as in CloudTrail S3 key prefixes.
pub(crate) fn date_path(ms: i64) -> String {
    let p = parts(ms);
    let mut out = String::with_capacity(10);
    push4(&mut out, p.y);
    out.push('/');
    push2(&mut out, p.mo);
    out.push('/');
    push2(&mut out, p.d);
    out
}

/// Day of the week, 0 = Monday.
pub(crate) fn weekday(ms: i64) -> u32 {
    // 1970-01-01 was a Thursday (3 when Monday is 0).
    (ms.div_euclid(DAY) + 3).rem_euclid(7) as u32
}

/// Parses `2026-11-30T09:12:03Z` back to epoch ms (tests and callers that hold ISO strings).
pub fn parse_iso(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}
