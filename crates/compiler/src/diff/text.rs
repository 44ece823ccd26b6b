//! How values are written in change texts: sizes, durations and header names.





pub(super) fn size_text(n: u64) -> String {
    const UNITS: [(u64, &str); 6] = [(1 << 30, "GiB"), (1_000_000_000, "GB"), (1 << 20, "MiB"), (1_000_000, "MB"), (1 << 10, "KiB"), (1000, "KB")];
    match UNITS.iter().find(|(u, _)| n >= *u && n.checked_rem(*u) == Some(0)) {
        Some((u, name)) => format!("{}{name}", n.checked_div(*u).unwrap_or(0)),
        None => format!("{n}B"),
    }
}

pub(super) fn secs_text(n: u64) -> String {
    const UNITS: [(u64, &str); 6] = [(31_536_000, "y"), (604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    if n == 0 {
        return "0s".to_owned();
    }
    match UNITS.iter().find(|(u, _)| n.checked_rem(*u) == Some(0)) {
        Some((u, name)) => format!("{}{name}", n.checked_div(*u).unwrap_or(0)),
        None => format!("{n}s"),
    }
}

pub(super) fn ms_text(ms: u64) -> String {
    if ms.checked_rem(1000) == Some(0) { secs_text(ms / 1000) } else { format!("{ms}ms") }
}

/// Conventional spelling of a lowercase header name.
pub(super) fn header_display(name: &str) -> String {
    const SPECIAL: [(&str, &str); 4] = [
        ("x-dns-prefetch-control", "X-DNS-Prefetch-Control"),
        ("x-xss-protection", "X-XSS-Protection"),
        ("x-aspnet-version", "X-AspNet-Version"),
        ("x-aspnetmvc-version", "X-AspNetMvc-Version"),
    ];
    if let Some((_, s)) = SPECIAL.iter().find(|(n, _)| *n == name) {
        return (*s).to_owned();
    }
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

