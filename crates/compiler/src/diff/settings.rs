//! Whole-policy settings: app, https, origins, deploy, cache, health, client IP and sanitize.

use edgeguard_core::cache::EdgeCache;
use std::collections::{BTreeMap, BTreeSet};

use edgeguard_core::Bundle;
use edgeguard_core::bundle::method;

use super::cidr::{canonical_cidrs, cidr_text};
use super::{Area, Change, Verdict, change};
use super::rules::list;
use super::text::{ms_text, size_text};

pub(super) fn diff_app(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let (a, b) = (&old.app, &new.app);
    if a.hosts != b.hosts {
        let (ov, nv) = (Some(list(&a.hosts)), Some(list(&b.hosts)));
        let (sa, sb): (BTreeSet<&String>, BTreeSet<&String>) = (a.hosts.iter().collect(), b.hosts.iter().collect());
        match (a.hosts.is_empty(), b.hosts.is_empty()) {
            (false, true) => out.push(change(Area::App, "hosts", "hosts", Verdict::Weakened, "host list removed (any Host is served)".to_owned(), ov, nv)),
            (true, false) => out.push(change(Area::App, "hosts", "hosts", Verdict::Strengthened, format!("only {} served now (was any Host)", list(&b.hosts)), ov, nv)),
            _ => {
                let added: Vec<&&String> = sb.difference(&sa).collect();
                let removed: Vec<&&String> = sa.difference(&sb).collect();
                if !added.is_empty() {
                    out.push(change(Area::App, "hosts", "hosts", Verdict::Weakened, format!("hosts added: {}", list(added.iter().map(|h| h.as_str()))), ov.clone(), nv.clone()));
                }
                if !removed.is_empty() {
                    out.push(change(Area::App, "hosts", "hosts", Verdict::Strengthened, format!("hosts removed: {}", list(removed.iter().map(|h| h.as_str()))), ov, nv));
                }
            }
        }
    }
    if a.canonical_host != b.canonical_host {
        let show = |h: &Option<String>| h.clone().unwrap_or_else(|| "(none)".to_owned());
        out.push(change(Area::App, "canonical_host", "canonical_host", Verdict::Neutral, format!("{} → {}", show(&a.canonical_host), show(&b.canonical_host)), a.canonical_host.clone(), b.canonical_host.clone()));
    }
    if a.name != b.name {
        out.push(change(Area::App, "name", "name", Verdict::Neutral, format!("{} → {}", a.name, b.name), Some(a.name.clone()), Some(b.name.clone())));
    }
    if a.environment != b.environment {
        out.push(change(
            Area::App,
            "environment",
            "environment",
            Verdict::Neutral,
            format!("compiled for {} → {}", a.environment, b.environment),
            Some(a.environment.clone()),
            Some(b.environment.clone()),
        ));
    }
}

pub(super) fn diff_https(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let (a, b) = (old.https.redirect, new.https.redirect);
    if a != b {
        let (verdict, text) = if b {
            (Verdict::Strengthened, "http → https redirect turned on")
        } else {
            (Verdict::Weakened, "http → https redirect turned off (plain http is served)")
        };
        out.push(change(Area::Https, "redirect", "redirect", verdict, text.to_owned(), Some(a.to_string()), Some(b.to_string())));
    }
}

pub(super) fn diff_origins(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let by_name = |b: &Bundle| -> BTreeMap<String, (String, u64)> { b.origins.iter().map(|o| (o.name.clone(), (o.url.clone(), o.timeout_ms))).collect() };
    let (om, nm) = (by_name(old), by_name(new));
    for (name, (url, timeout)) in &om {
        let Some((nurl, ntimeout)) = nm.get(name) else {
            out.push(change(Area::Origins, name, "url", Verdict::Neutral, format!("removed (was {url})"), Some(url.clone()), None));
            continue;
        };
        if url != nurl {
            let https = |u: &str| u.to_ascii_lowercase().starts_with("https://");
            let verdict = match (https(url), https(nurl)) {
                (true, false) => Verdict::Weakened,
                (false, true) => Verdict::Strengthened,
                _ => Verdict::Neutral,
            };
            let note = if verdict == Verdict::Weakened { " (the edge now talks to it in plain http)" } else { "" };
            out.push(change(Area::Origins, name, "url", verdict, format!("url {url} → {nurl}{note}"), Some(url.clone()), Some(nurl.clone())));
        }
        if timeout != ntimeout {
            out.push(change(
                Area::Origins,
                name,
                "timeout",
                Verdict::Neutral,
                format!("timeout {} → {}", ms_text(*timeout), ms_text(*ntimeout)),
                Some(ms_text(*timeout)),
                Some(ms_text(*ntimeout)),
            ));
        }
    }
    for (name, (url, _)) in &nm {
        if !om.contains_key(name) {
            out.push(change(Area::Origins, name, "url", Verdict::Neutral, format!("added ({url})"), None, Some(url.clone())));
        }
    }
}

pub(super) fn diff_deploy(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let origin = |b: &Bundle, i: u16| b.origins.get(usize::from(i)).map_or_else(|| "(none)".to_owned(), |o| o.name.clone());
    let (ao, an) = (origin(old, old.deploy.active), origin(new, new.deploy.active));
    let mut neutral = |key: &str, old: String, new: String| {
        out.push(change(Area::Deploy, key, key, Verdict::Neutral, format!("{old} → {new}"), Some(old), Some(new)));
    };
    if !old.origins.is_empty() && !new.origins.is_empty() && ao != an {
        neutral("active", ao, an);
    }
    let canary = |b: &Bundle| match &b.deploy.canary {
        Some(c) => format!("{} {}.{:02}%", origin(b, c.origin), c.basis_points / 100, c.basis_points % 100),
        None => "(none)".to_owned(),
    };
    let (co, cn) = (canary(old), canary(new));
    if co != cn {
        neutral("canary", co, cn);
    }
    if old.deploy.sticky_cookie != new.deploy.sticky_cookie {
        neutral("sticky_cookie", old.deploy.sticky_cookie.clone(), new.deploy.sticky_cookie.clone());
    }
    if old.deploy.failover_methods != new.deploy.failover_methods {
        let show = |m: u16| if m == 0 { "off".to_owned() } else { method::allow_value(m) };
        neutral("failover", show(old.deploy.failover_methods), show(new.deploy.failover_methods));
    }
}

/// A route's edge cache in a few words: `edge 1h, swr 60s, sie 1d, credentialed`.
pub(super) fn edge_cache_text(c: EdgeCache) -> String {
    let secs = |s: u64| ms_text(s.saturating_mul(1000));
    let mut text = format!("edge {}", secs(c.edge_secs));
    if c.swr_secs > 0 {
        text.push_str(&format!(", stale_while_revalidate {}", secs(c.swr_secs)));
    }
    if c.sie_secs > 0 {
        text.push_str(&format!(", stale_if_error {}", secs(c.sie_secs)));
    }
    if c.credentialed {
        text.push_str(", credentialed");
    }
    text
}

/// A longer or wider edge cache is weakened where it exposes personal data — answers to
/// requests with credentials (`credentialed`) kept or shared longer — and neutral otherwise:
/// what is not personal is the same for every client, however long it is kept.
pub(super) fn edge_cache_verdict(old: Option<EdgeCache>, new: Option<EdgeCache>) -> Verdict {
    let personal = |c: Option<EdgeCache>| c.filter(|c| c.credentialed).map(|c| c.keep_secs().max(1));
    match (personal(old), personal(new)) {
        (None, Some(_)) => Verdict::Weakened,
        (Some(a), Some(b)) if b > a => Verdict::Weakened,
        (Some(_), None) => Verdict::Strengthened,
        (Some(a), Some(b)) if b < a => Verdict::Strengthened,
        _ => Verdict::Neutral,
    }
}

/// `[cache]`, `[fallback]`, `[maintenance]`: fewer personal cookies or headers caches personal
/// answers (weakened); the rest changes availability, not exposure (neutral), except an
/// allow-list that grows past maintenance (weakened).
pub(super) fn diff_cache(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let (a, b) = (&old.cache, &new.cache);
    let cookies = |c: &edgeguard_core::cache::CacheSettings| c.personal_cookies.iter().map(|g| g.source()).collect::<BTreeSet<String>>();
    for (key, before, after) in [
        ("personal_cookies", cookies(a), cookies(b)),
        ("personal_headers", a.personal_headers.iter().cloned().collect(), b.personal_headers.iter().cloned().collect()),
    ] {
        // `*` lists every name: gaining it widens whatever else was dropped.
        let dropped: Vec<&String> = if after.contains("*") { Vec::new() } else { before.difference(&after).collect() };
        let added: Vec<&String> = after.difference(&before).collect();
        let show = |set: &BTreeSet<String>| Some(set.iter().cloned().collect::<Vec<_>>().join(", "));
        if !dropped.is_empty() {
            // One change per key: a pattern swapped for a narrower one is a narrowing.
            let list = dropped.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let text = format!("{key} no longer lists {list}: requests with it are cached like anyone's");
            out.push(change(Area::Cache, "cache", key, Verdict::Weakened, text, show(&before), show(&after)));
        } else if !added.is_empty() {
            let list = added.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            out.push(change(Area::Cache, "cache", key, Verdict::Strengthened, format!("{key} now lists {list}"), show(&before), show(&after)));
        }
    }
    if a.version != b.version {
        let text = format!("version {} → {}: every stored copy is missed", a.version, b.version);
        out.push(change(Area::Cache, "cache", "version", Verdict::Neutral, text, Some(a.version.clone()), Some(b.version.clone())));
    }
    let page = |b: &Bundle| b.fallback.as_ref().map(|f| format!("{} bytes, retry after {}", f.html.len(), ms_text(f.retry_after_secs.saturating_mul(1000))));
    let (pa, pb) = (page(old), page(new));
    if pa != pb || old.fallback.as_ref().map(|f| &f.html) != new.fallback.as_ref().map(|f| &f.html) {
        let text = format!("fallback page {} → {}", pa.as_deref().unwrap_or("none"), pb.as_deref().unwrap_or("none"));
        out.push(change(Area::Cache, "fallback", "page", Verdict::Neutral, text, pa, pb));
    }
    let (ma, mb) = (&old.maintenance, &new.maintenance);
    let ips = |m: &edgeguard_core::cache::Maintenance| canonical_cidrs(&m.allow_ips).iter().map(cidr_text).collect::<BTreeSet<String>>();
    let (ia, ib) = (ips(ma), ips(mb));
    if ia != ib {
        let verdict = if ib.difference(&ia).next().is_some() { Verdict::Weakened } else { Verdict::Strengthened };
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let text = format!("allow_ips [{}] → [{}]", join(&ia), join(&ib));
        out.push(change(Area::Cache, "maintenance", "allow_ips", verdict, text, Some(join(&ia)), Some(join(&ib))));
    }
    if ma.bypass_header != mb.bypass_header || ma.retry_after_secs != mb.retry_after_secs {
        let show = |m: &edgeguard_core::cache::Maintenance| format!("bypass_header {}, retry after {}", m.bypass_header.as_deref().unwrap_or("none"), ms_text(m.retry_after_secs.saturating_mul(1000)));
        let (x, y) = (show(ma), show(mb));
        out.push(change(Area::Cache, "maintenance", "bypass_header", Verdict::Neutral, format!("{x} → {y}"), Some(x), Some(y)));
    }
}

pub(super) fn diff_health(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let show = |b: &Bundle| {
        b.health.as_ref().map(|h| format!("{} (probes {}, timeout {}, cache {}, warn after {})", h.path, h.probe_path, ms_text(h.timeout_ms), ms_text(h.cache_ms), ms_text(h.warn_after_ms)))
    };
    let (a, b) = (show(old), show(new));
    if a != b {
        let text = match (&a, &b) {
            (Some(_), None) => "removed".to_owned(),
            (None, Some(x)) => format!("added: {x}"),
            (Some(x), Some(y)) => format!("{x} → {y}"),
            (None, None) => String::new(),
        };
        out.push(change(Area::Health, "endpoint", "path", Verdict::Neutral, text, a, b));
    }
}

pub(super) fn diff_client_ip(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let show = |h: &Option<String>| h.clone().unwrap_or_else(|| "(none)".to_owned());
    let pairs = [
        ("from", &old.client_ip.from, &new.client_ip.from, " (make sure only your platform can set it)"),
        ("request_id_from", &old.client_ip.request_id_from, &new.client_ip.request_id_from, ""),
    ];
    for (key, a, b, note) in pairs {
        if a != b {
            let note = if b.is_some() { note } else { "" };
            out.push(change(Area::ClientIp, key, key, Verdict::Neutral, format!("{} → {}{note}", show(a), show(b)), a.clone(), b.clone()));
        }
    }
    let (pa, pb) = (old.client_ip.ipv6_prefix, new.client_ip.ipv6_prefix);
    if pa != pb {
        // A longer prefix splits one IPv6 client into more limit buckets.
        let (verdict, how) = if pb > pa { (Verdict::Weakened, "a client gets more buckets") } else { (Verdict::Strengthened, "a client gets fewer buckets") };
        out.push(change(Area::ClientIp, "ipv6_prefix", "ipv6_prefix", verdict, format!("ipv6_prefix /{pa} → /{pb}: {how}"), Some(pa.to_string()), Some(pb.to_string())));
    }
}

pub(super) fn diff_sanitize(old: &Bundle, new: &Bundle, out: &mut Vec<Change>) {
    let (a, b) = (&old.sanitize, &new.sanitize);
    let pairs = [
        ("max_url", u64::from(a.max_url_bytes), u64::from(b.max_url_bytes), true),
        ("max_header_bytes", u64::from(a.max_header_bytes), u64::from(b.max_header_bytes), true),
        ("max_headers", u64::from(a.max_headers), u64::from(b.max_headers), false),
    ];
    for (key, x, y, size) in pairs {
        if x == y {
            continue;
        }
        let show = |v: u64| if size { size_text(v) } else { v.to_string() };
        let (verdict, how) = if y > x { (Verdict::Weakened, "raised") } else { (Verdict::Strengthened, "lowered") };
        out.push(change(Area::Sanitize, key, key, verdict, format!("{key} {how} from {} to {}", show(x), show(y)), Some(show(x)), Some(show(y))));
    }
    let (sa, sb): (BTreeSet<&String>, BTreeSet<&String>) = (a.strip_headers.iter().collect(), b.strip_headers.iter().collect());
    if sa != sb {
        let (gone, added): (Vec<&str>, Vec<&str>) = (sa.difference(&sb).map(|h| h.as_str()).collect(), sb.difference(&sa).map(|h| h.as_str()).collect());
        let (ov, nv) = (Some(list(&a.strip_headers)), Some(list(&b.strip_headers)));
        if !gone.is_empty() {
            out.push(change(Area::Sanitize, "strip_headers", "strip_headers", Verdict::Weakened, format!("no longer strips {}", gone.join(", ")), ov.clone(), nv.clone()));
        }
        if !added.is_empty() {
            out.push(change(Area::Sanitize, "strip_headers", "strip_headers", Verdict::Strengthened, format!("also strips {}", added.join(", ")), ov, nv));
        }
    }
}

