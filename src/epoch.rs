//! The one place that decides the build epoch: `SOURCE_DATE_EPOCH` when set, else
//! 1980-01-01T00:00:01Z, the earliest time that zip-based tools accept.

use std::env;

/// 1980-01-01T00:00:01Z in seconds since the Unix epoch.
pub const DEFAULT_EPOCH: u64 = 315_532_801;

#[derive(Debug, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH=`{0}` is not a whole number of seconds since 1970: unset it or give e.g. `SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`")]
pub struct EpochError(String);

/// The build epoch in seconds since the Unix epoch.
pub fn build_epoch() -> Result<u64, EpochError> {
    match env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|_| EpochError(value.clone()))
        }
        _ => Ok(DEFAULT_EPOCH),
    }
}

/// Formats `epoch` as an RFC 3339 UTC timestamp, as OCI config `created` wants it.
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_epoch_formats_as_1980() {
        assert_eq!(rfc3339(DEFAULT_EPOCH), "1980-01-01T00:00:01Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
