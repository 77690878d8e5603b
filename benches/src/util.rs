//! Small helpers: the cross-process clock, process memory, formatting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on `CLOCK_MONOTONIC`.
///
/// Unlike [`std::time::Instant`], the value can be compared across processes of one machine:
/// every process reads the same kernel clock, so a timestamp written by one worker and read by
/// another measures a real interval.
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; fall back to 0 rather than panic.
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |ts| {
        let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
        let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
        secs * 1_000_000_000 + nanos
    })
}

/// `duration` in nanoseconds, `u64::MAX` for the durations (over 584 years) that do not fit.
pub fn saturating_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Sleeps (asynchronously) until [`monotonic_ns`] reaches `deadline_ns`.
pub async fn sleep_until_ns(deadline_ns: u64) {
    let now = monotonic_ns();
    if deadline_ns > now {
        tokio::time::sleep(Duration::from_nanos(deadline_ns - now)).await;
    }
}

/// The resident set size of this process in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `ns` nanoseconds as a short human figure: `"87 µs"`, `"1.25 ms"`, `"2.0 s"`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        let us = ns / 1_000.0;
        if us < 10.0 {
            format!("{us:.1} µs")
        } else {
            format!("{us:.0} µs")
        }
    } else if ns < 1_000_000_000.0 {
        let ms = ns / 1_000_000.0;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// `bytes` as `"1.4 KiB"`, `"12.3 MiB"`.
pub fn fmt_bytes(bytes: f64) -> String {
    if bytes.abs() < 1024.0 {
        format!("{bytes:.0} B")
    } else if bytes.abs() < 1024.0 * 1024.0 {
        format!("{:.2} KiB", bytes / 1024.0)
    } else {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    }
}

/// A rate as `"12 345/s"` with thin grouping.
pub fn fmt_rate(per_second: f64) -> String {
    format!("{}/s", group_thousands(per_second.round()))
}

/// An integer-valued float with spaces between thousands: `12 345`.
pub fn group_thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        (rem % 3_600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_short() {
        assert_eq!(fmt_ns(87_000.0), "87 µs");
        assert_eq!(fmt_ns(1_250_000.0), "1.25 ms");
        assert_eq!(fmt_bytes(1_536.0), "1.50 KiB");
        assert_eq!(group_thousands(1_234_567.0), "1 234 567");
        assert_eq!(group_thousands(999.0), "999");
    }

    #[test]
    fn clock_moves_forward_and_rss_is_known() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a && a > 0);
        assert!(rss_bytes().is_some_and(|rss| rss > 0));
    }
}
