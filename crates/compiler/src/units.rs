//! Durations (`"500ms" "30s" "15m" "1h" "1d" "1y"`), sizes (`"512B" "64KiB" "1MiB" "10MB"`)
//! and rates (`"100/15m"`).

/// Milliseconds in a duration string.
pub fn duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{text}` does not start with a number"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{digits}` is too large"))?;
    let factor: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        "y" => 31_536_000_000,
        "" => return Err(format!("`{text}` has no unit")),
        other => return Err(format!("`{other}` is not a duration unit")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

/// Milliseconds of an optional duration value, `default_ms` when absent; a value that does not
/// parse is reported (E010) and gives the default, so one mistake is one diagnostic.
pub fn duration(ctx: &mut crate::Ctx, value: Option<&crate::model::S<String>>, default_ms: u64) -> u64 {
    let Some(v) = value else { return default_ms };
    match duration_ms(v.get_ref()) {
        Ok(ms) => ms,
        Err(e) => {
            ctx.push(crate::diagnostics::Diagnostic::error(crate::codes::DURATION, v.span(), e).help(DURATION_HELP));
            default_ms
        }
    }
}

pub const DURATION_HELP: &str = "write a whole number and a unit: ms, s, m, h, d, w or y (e.g. \"30s\", \"15m\", \"1y\")";

/// Bytes in a size string.
pub fn size_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{text}` does not start with a number"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{digits}` is too large"))?;
    let factor: u64 = match unit.trim() {
        "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "" => return Err(format!("`{text}` has no unit")),
        other => return Err(format!("`{other}` is not a size unit")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

pub const SIZE_HELP: &str = "write a whole number and a unit: B, KB, MB, GB, KiB, MiB or GiB (e.g. \"64KiB\", \"10MiB\")";

/// `(count, window in seconds)` of a rate string.
pub fn rate(text: &str) -> Result<(u64, u64), String> {
    let Some((count, window)) = text.trim().split_once('/') else {
        return Err(format!("`{text}` is not COUNT/WINDOW"));
    };
    let count: u64 = count.trim().parse().map_err(|_| format!("`{count}` is not a whole number of requests"))?;
    if count == 0 {
        return Err("a rate of 0 requests admits nothing; use `block` to refuse a route".into());
    }
    let window = window.trim();
    // "100/m" is read as "100/1m".
    let window_text = if window.starts_with(|c: char| c.is_ascii_digit()) { window.to_owned() } else { format!("1{window}") };
    let ms = duration_ms(&window_text)?;
    if ms < 1_000 || ms % 1_000 != 0 {
        return Err(format!("the window `{window}` must be a whole number of seconds"));
    }
    Ok((count, ms / 1_000))
}

pub const RATE_HELP: &str = "write requests per window, e.g. \"100/15m\", \"10/1s\" or \"5/h\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(duration_ms("500ms"), Ok(500));
        assert_eq!(duration_ms("15m"), Ok(900_000));
        assert_eq!(duration_ms("1y"), Ok(31_536_000_000));
        assert!(duration_ms("10").is_err());
        assert!(duration_ms("-1s").is_err());
        assert!(duration_ms("1.5s").is_err());
        assert!(duration_ms("99999999999999999999s").is_err());
        assert_eq!(size_bytes("10MiB"), Ok(10 << 20));
        assert_eq!(size_bytes("10MB"), Ok(10_000_000));
        assert!(size_bytes("10mb").is_err());
        assert_eq!(rate("100/15m"), Ok((100, 900)));
        assert_eq!(rate("5/h"), Ok((5, 3600)));
        assert!(rate("0/1m").is_err());
        assert!(rate("10/500ms").is_err());
        assert!(rate("ten/1m").is_err());
    }
}
