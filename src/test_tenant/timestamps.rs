//! The times B2C's answers carry: its error descriptions' timestamps, `Retry-After` dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `yyyy-MM-dd HH:mm:ssZ`, from epoch seconds (civil-from-days, proleptic Gregorian).
pub(super) fn b2c_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Epoch seconds in `Retry-After` HTTP-date form.
pub(super) fn http_date_in(delay: Duration) -> String {
    httpdate::fmt_http_date(SystemTime::now() + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_b2c() {
        assert_eq!(
            b2c_timestamp(UNIX_EPOCH + Duration::from_secs(1_548_855_309)),
            "2019-01-30 13:35:09Z"
        );
        assert_eq!(b2c_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00Z");
        assert_eq!(
            b2c_timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00Z"
        );
    }
}
