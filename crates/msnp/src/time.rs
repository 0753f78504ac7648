//! Calendar time for the few places the protocol writes dates: MSNP10+ list
//! versions and the lifetimes in RST tokens.

/// Unix seconds as (year, month, day, hour, minute, second) in UTC, by
/// Howard Hinnant's days-to-civil algorithm.
pub fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Unix milliseconds as an MSNP10+ list version:
/// `2005-04-23T18:57:44.8130000+00:00`.
pub fn msnp_timestamp(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms.div_euclid(1000));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}0000+00:00", ms.rem_euclid(1000))
}

/// Unix seconds as `2005-04-23T18:57:44Z`.
pub fn iso8601(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Unix seconds as an RFC 822 date (`Tue, 22 Nov 2026 10:04:00 +0000`).
pub fn rfc822(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s) = civil(secs);
    let weekday = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    format!("{weekday}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} +0000", MONTHS[(mo - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(msnp_timestamp(0), "1970-01-01T00:00:00.0000000+00:00");
        assert_eq!(msnp_timestamp(1_114_300_664_813), "2005-04-23T23:57:44.8130000+00:00");
        assert_eq!(msnp_timestamp(951_782_400_000), "2000-02-29T00:00:00.0000000+00:00");
        assert_eq!(iso8601(1_114_300_664), "2005-04-23T23:57:44Z");
        assert_eq!(rfc822(1_114_300_664), "Sat, 23 Apr 2005 23:57:44 +0000");
    }
}
