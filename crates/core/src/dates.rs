//! Dates as text: RFC 3339 timestamps with milliseconds, for log lines, shadow lines and the
//! fleet dashboard, without a date library (the engine never reads the clock; the shell passes
//! the time in).

/// `2025-01-02T03:04:05.678Z` for milliseconds since the Unix epoch.
pub fn rfc3339_millis(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // Fixed-width digits by hand: one timestamp per log line, and `format!` costs more in
    // wasm than the rest of the line.
    let mut out = String::with_capacity(24);
    push_digits(&mut out, u64::try_from(year).unwrap_or(0), 4);
    out.push('-');
    push_digits(&mut out, u64::from(month), 2);
    out.push('-');
    push_digits(&mut out, u64::from(day), 2);
    out.push('T');
    push_digits(&mut out, rem / 3600, 2);
    out.push(':');
    push_digits(&mut out, rem % 3600 / 60, 2);
    out.push(':');
    push_digits(&mut out, rem % 60, 2);
    out.push('.');
    push_digits(&mut out, millis, 3);
    out.push('Z');
    out
}

/// `value` in decimal, zero-padded to at least `width` digits (as `{value:0width$}`).
fn push_digits(out: &mut String, value: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    for _ in text.len()..width {
        out.push('0');
    }
    out.push_str(text);
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
// Bounded by construction: 0 ≤ doe < 146 097, so no step below can overflow.
#[allow(clippy::arithmetic_side_effects)]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_millis(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }

    // proptest needs threads and the filesystem (failure persistence): native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// The hand-written digits say what `format!` would (years 1970–9999).
        #[test]
        fn timestamps_match_format(ms in 0u64..253_402_300_800_000) {
            let secs = ms / 1000;
            let (y, mo, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
            let rem = secs % 86_400;
            let expected = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000);
            proptest::prop_assert_eq!(rfc3339_millis(ms), expected);
        }
    }
}
