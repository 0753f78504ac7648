//! Calendar time for the few places the protocol writes dates: MSNP10+ list
//! versions, the lifetimes in RST tokens and offline-message headers. The
//! `time` crate does the calendar; the formats are MSN's.

use time::OffsetDateTime;
use time::macros::format_description;

/// A Unix time in UTC; out of the calendar's range, the epoch (no time the
/// service writes is).
fn utc(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn format(at: OffsetDateTime, description: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    at.format(description).unwrap_or_default()
}

/// Unix milliseconds as an MSNP10+ list version:
/// `2005-04-23T18:57:44.8130000+00:00`.
pub fn msnp_timestamp(ms: i64) -> String {
    let at = utc(ms.div_euclid(1000));
    let date = format(at, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"));
    format!("{date}.{:03}0000+00:00", ms.rem_euclid(1000))
}

/// Reads a time a client hands back (an `msnp_timestamp`, or any RFC 3339
/// time such as the `0001-01-01T00:00:00.0000000-08:00` that means "never")
/// as Unix milliseconds.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Unix seconds as `2005-04-23T18:57:44Z`.
pub fn iso8601(secs: i64) -> String {
    format(utc(secs), format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
}

/// Unix seconds as a mail date without the weekday: `22 Mar 2007 00:29:46`.
pub fn mail_date(secs: i64) -> String {
    format(utc(secs), format_description!("[day] [month repr:short] [year] [hour]:[minute]:[second]"))
}

/// Unix seconds as an RFC 822 date (`Tue, 22 Nov 2026 10:04:00 +0000`).
pub fn rfc822(secs: i64) -> String {
    format(
        utc(secs),
        format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"),
    )
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

    #[test]
    fn timestamps_read_back() {
        for ms in [0, 1_114_300_664_813, 951_782_400_001] {
            assert_eq!(parse_timestamp_ms(&msnp_timestamp(ms)), Some(ms));
        }
        assert_eq!(parse_timestamp_ms("2005-04-23T16:57:44.813-07:00"), Some(1_114_300_664_813));
        assert!(parse_timestamp_ms("0001-01-01T00:00:00.0000000-08:00").is_some_and(|ms| ms < 0));
        assert_eq!(parse_timestamp_ms("yesterday"), None);
    }
}
