//! The fleet dashboard (`[stats] dashboard`, `/__edge/dashboard` by default): one HTML page
//! rendered here from the fleet statistics, with inline SVG charts and no script at all. It
//! answers "are we OK?" at the top (every SLO's state, budget left, burn rate), then shows the
//! last hour (60 buckets): requests per minute by status class, p50/p95/p99 per route against
//! each SLO's line, refusals by reason, 429s by limit, origin failures and failovers, policy
//! revision markers, and the top CSP violations.
//!
//! The page loads nothing: no script, no font, no image, no third-party request. Its one
//! `<style>` element is allowed by hash in its own Content-Security-Policy ([`csp`]), which is
//! stricter than any policy's (`default-src 'none'`). Charts are SVG with presentation
//! attributes, sized by `viewBox` at 400 units wide, so they read the same on a phone (400 px)
//! as in a screenshot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::slo::{BURN_RULES, LatencyOf, severity, severity_name, window_label};
use crate::stats::{Agg, Fleet, RELATIVE_ERROR, objectives, trim};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:960px;padding:8px;color:#1b1f24;background:#fff}\
h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #d0d7de}\
small,.muted{color:#57606a}table{border-collapse:collapse;width:100%;font-size:13px}\
td,th{border-bottom:1px solid #eaeef2;padding:3px 4px;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.status{font-size:17px;font-weight:600;padding:8px;border-radius:6px;margin:6px 0}\
.ok{background:#dafbe1;color:#116329}.warn{background:#fff8c5;color:#7d4e00}.bad{background:#ffebe9;color:#a40e26}\
svg{width:100%;max-width:720px;height:auto;display:block}svg.sw{width:10px;height:10px;display:inline-block;margin-right:3px}\
.legend span{margin-right:10px;white-space:nowrap}h3{font-size:14px;margin:10px 0 2px}.wrap{overflow-x:auto}";

/// The page's Content-Security-Policy: nothing but its own style element.
pub fn csp() -> String {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!(
        "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        base64(&digest)
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3).saturating_mul(4));
    for chunk in bytes.chunks(3) {
        let b = [chunk.first().copied().unwrap_or(0), chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CLASS_COLORS: [(usize, &str, &str); 4] = [(2, "2xx", "#2da44e"), (3, "3xx", "#8c959f"), (4, "4xx", "#d4a72c"), (5, "5xx", "#cf222e")];
const W: f64 = 400.0;
const H: f64 = 130.0;
const LEFT: f64 = 34.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 18.0;

/// The page for the fleet at `now_ms`. One function on purpose, though long: it is the page's
/// template, section by section in the order the page shows them, each section's markup next
/// to the numbers it prints.
pub fn render(fleet: &Fleet, now_ms: u64) -> String {
    let mut p = String::with_capacity(32 * 1024);
    let head = fleet.head.as_ref();
    let app = head.map_or("edgeguard", |h| h.app.as_str());
    let bucket_ms = head.map_or(60_000, |h| h.bucket_ms.max(1));
    let _ = write!(
        p,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{} · edgeguard</title><style>{STYLE}</style></head><body>",
        esc(app)
    );
    let _ = write!(p, "<header><h1>{} <small>{}</small></h1>", esc(app), esc(head.map_or("", |h| h.environment.as_str())));

    // Are we OK?
    let mut firing: Vec<String> = Vec::new();
    let mut burning: Vec<String> = Vec::new();
    let mut slo_rows = String::new();
    if let Some(h) = head {
        for slo in &h.slos {
            for (objective, target) in objectives(slo) {
                let short = fleet.burn_rate(slo, objective, target, now_ms, 5);
                let long = fleet.burn_rate(slo, objective, target, now_ms, 60);
                let left = fleet.budget_left(slo, objective, target, now_ms);
                let what = match (objective, &slo.latency) {
                    ("latency", Some(l)) => format!("p{} {} ≤ {} ms", trim(target * 100.0), l.of.as_str(), l.threshold_ms),
                    _ => format!("{} % non-5xx", trim(target * 100.0)),
                };
                let mut alert = String::from("—");
                for sev in [severity::PAGE, severity::TICKET] {
                    let key = format!("{}/{objective}/{}", slo.name, severity_name(sev));
                    if fleet.alerts.get(&key).is_some_and(|a| a.firing) {
                        alert = format!("<b>{} firing</b>", severity_name(sev));
                        firing.push(format!("{} {objective} ({})", slo.name, severity_name(sev)));
                    }
                }
                if alert == "—" && long > 1.0 {
                    burning.push(format!("{} {objective}", slo.name));
                }
                let window = window_label(slo.window_buckets);
                let _ = write!(
                    slo_rows,
                    "<tr data-slo=\"{}/{objective}\"><td>{}</td><td>{}</td><td class=\"n\" data-k=\"burn5m\">{}×</td><td class=\"n\" data-k=\"burn1h\">{}×</td><td class=\"n\" data-k=\"budget\">{} % <small>of {window}</small></td><td>{alert}</td></tr>",
                    esc(&slo.name),
                    esc(&slo.name),
                    esc(&what),
                    trim(short),
                    trim(long),
                    trim((left * 100.0).max(-999.0)),
                );
            }
        }
    }
    let (class, text) = if !firing.is_empty() {
        ("bad", format!("Alerting: {}", esc(&firing.join(", "))))
    } else if !burning.is_empty() {
        ("warn", format!("Burning error budget: {}", esc(&burning.join(", "))))
    } else if head.is_some_and(|h| !h.slos.is_empty()) {
        ("ok", "All SLOs within budget".to_owned())
    } else {
        ("ok", "No SLO defined ([slo.*] in the policy)".to_owned())
    };
    let _ = write!(p, "<p class=\"status {class}\" id=\"status\">{text}</p>");
    let _ = write!(
        p,
        "<p class=\"muted\">Fleet-wide, every isolate's requests merged. Updated {} · revision {} · a bar is {} · percentiles within {} %.</p></header>",
        crate::dates::rfc3339_millis(now_ms),
        esc(head.map_or("—", |h| h.revision.as_str())),
        duration_label(bucket_ms),
        trim(RELATIVE_ERROR * 100.0),
    );
    if !slo_rows.is_empty() {
        let _ = write!(
            p,
            "<section><h2>SLOs</h2><div class=\"wrap\"><table><tr><th>SLO</th><th>objective</th><th class=\"n\">burn 5m</th><th class=\"n\">burn 1h</th><th class=\"n\">budget left</th><th>alert</th></tr>{slo_rows}</table></div><p class=\"muted\">Pages at {}; tickets at {}.</p></section>",
            rules_text(severity::PAGE),
            rules_text(severity::TICKET)
        );
    }

    // The last hour, bucket by bucket.
    let start = now_ms.checked_div(bucket_ms).unwrap_or(0).saturating_mul(bucket_ms);
    let first = start.saturating_sub(59u64.saturating_mul(bucket_ms));
    let slots: Vec<u64> = (0..60u64).map(|i| first.saturating_add(i.saturating_mul(bucket_ms))).collect();
    let per_slot: Vec<Option<&BTreeMap<String, Agg>>> = slots.iter().map(|t| fleet.minutes.get(t)).collect();
    let markers: Vec<(usize, &str)> = fleet
        .revisions
        .iter()
        .filter_map(|(rev, t)| slots.iter().position(|s| s == t).map(|i| (i, rev.as_str())))
        .collect();

    // Requests per minute, stacked by class.
    let totals: Vec<[u64; 6]> = per_slot
        .iter()
        .map(|routes| {
            let mut c = [0u64; 6];
            for a in routes.iter().flat_map(|r| r.values()) {
                for (x, y) in c.iter_mut().zip(a.class) {
                    *x = x.saturating_add(y);
                }
            }
            c
        })
        .collect();
    let max = totals.iter().map(|c| c.iter().fold(0u64, |a, b| a.saturating_add(*b))).max().unwrap_or(0);
    let _ = write!(p, "<section><h2>Requests per {}</h2>", duration_label(bucket_ms));
    let mut svg = Chart::new(max as f64, "req");
    for (i, c) in totals.iter().enumerate() {
        let mut base = 0u64;
        for (idx, _, color) in CLASS_COLORS {
            let n = c.get(idx).copied().unwrap_or(0);
            if n > 0 {
                svg.bar(i, base as f64, base.saturating_add(n) as f64, color);
            }
            base = base.saturating_add(n);
        }
    }
    svg.markers(&markers);
    p.push_str(&svg.finish());
    p.push_str("<p class=\"legend\">");
    for (_, name, color) in CLASS_COLORS {
        let _ = write!(p, "<span>{}{name}</span>", swatch(color));
    }
    p.push_str("<span>┆ policy revision</span></p></section>");

    // Latency per route.
    let hour = fleet.hour_routes(now_ms);
    p.push_str("<section><h2>Latency per route (last hour)</h2><div class=\"wrap\"><table><tr><th>route</th><th class=\"n\">requests</th><th class=\"n\">5xx</th><th class=\"n\">refused</th><th class=\"n\">origin p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th><th class=\"n\">edge p95</th></tr>");
    let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{} ms", trim(v)));
    for (route, a) in &hour {
        let _ = write!(
            p,
            "<tr data-route=\"{}\"><td>{}</td><td class=\"n\" data-k=\"requests\">{}</td><td class=\"n\" data-k=\"5xx\">{}</td><td class=\"n\" data-k=\"refused\">{}</td><td class=\"n\" data-k=\"p50\">{}</td><td class=\"n\" data-k=\"p95\">{}</td><td class=\"n\" data-k=\"p99\">{}</td><td class=\"n\" data-k=\"edge_p95\">{}</td></tr>",
            esc(route),
            esc(route),
            a.n,
            a.server_errors(),
            a.refused,
            ms(a.origin.quantile(0.5)),
            ms(a.origin.quantile(0.95)),
            ms(a.origin.quantile(0.99)),
            ms(a.edge.quantile(0.95)),
        );
    }
    p.push_str("</table></div>");
    let mut by_traffic: Vec<(&String, &Agg)> = hour.iter().filter(|(_, a)| !a.origin.is_empty()).collect();
    by_count(&mut by_traffic, |x| x.1.origin.count());
    for (route, _) in by_traffic.into_iter().take(6) {
        let series: Vec<[Option<f64>; 3]> = per_slot
            .iter()
            .map(|r| {
                let h = r.and_then(|r| r.get(route)).map(|a| &a.origin);
                [h.and_then(|h| h.quantile(0.5)), h.and_then(|h| h.quantile(0.95)), h.and_then(|h| h.quantile(0.99))]
            })
            .collect();
        let line = head.and_then(|h| {
            h.slos.iter().filter(|s| s.route_patterns.iter().any(|r| r == route)).find_map(|s| s.latency.filter(|l| l.of == LatencyOf::Origin).map(|l| (l.threshold_ms as f64, s.name.clone())))
        });
        let top = series.iter().flat_map(|s| s.iter().flatten().copied()).fold(line.as_ref().map_or(0.0, |l| l.0 * 1.2), f64::max);
        let _ = write!(p, "<h3>{} <small>origin time</small></h3>", esc(route));
        let mut svg = Chart::new(top, "ms");
        for (k, color) in [(0usize, "#0969da"), (1, "#bf8700"), (2, "#cf222e")] {
            svg.line(series.iter().map(|s| s.get(k).copied().flatten()), color);
        }
        if let Some((y, name)) = &line {
            svg.threshold(*y, &format!("SLO {name}"));
        }
        svg.markers(&markers);
        p.push_str(&svg.finish());
        let _ = write!(p, "<p class=\"legend\"><span>{}p50</span><span>{}p95</span><span>{}p99</span><span>- - SLO</span></p>", swatch("#0969da"), swatch("#bf8700"), swatch("#cf222e"));
    }
    p.push_str("</section>");

    // Refusals, 429s, origins, CSP.
    let mut all = Agg::default();
    for a in hour.values() {
        all.merge(a);
    }
    let refusals: BTreeMap<String, u64> = hour
        .values()
        .flat_map(|a| a.reasons.iter())
        .filter(|(r, _)| !matches!(r.as_str(), "ok" | "health" | "metrics" | "dashboard" | "csp_report" | "https_redirect" | "canonical_host" | "origin_timeout" | "origin_unreachable"))
        .fold(BTreeMap::new(), |mut m, (r, n)| {
            let c = m.entry(r.clone()).or_insert(0u64);
            *c = c.saturating_add(*n);
            m
        });
    bars(&mut p, "Refusals by reason (last hour)", "reason", &refusals);
    bars(&mut p, "429s by limit (last hour)", "limit", &all.limited);

    let _ = write!(p, "<section><h2>Origins</h2><p>Failed attempts <b data-k=\"origin_failures\">{}</b> · failovers <b data-k=\"failovers\">{}</b> (last hour)</p>", all.origin_failures.values().fold(0u64, |a, b| a.saturating_add(*b)), all.failovers);
    let fails: Vec<(u64, u64)> = per_slot
        .iter()
        .map(|r| {
            r.iter().flat_map(|r| r.values()).fold((0u64, 0u64), |(x, y), a| (x.saturating_add(a.origin_failures.values().fold(0u64, |s, n| s.saturating_add(*n))), y.saturating_add(a.failovers)))
        })
        .collect();
    let top = fails.iter().map(|(a, b)| (*a).max(*b)).max().unwrap_or(0);
    let mut svg = Chart::new(top as f64, "n");
    svg.line(fails.iter().map(|f| Some(f.0 as f64)), "#cf222e");
    svg.line(fails.iter().map(|f| Some(f.1 as f64)), "#8250df");
    svg.markers(&markers);
    p.push_str(&svg.finish());
    let _ = write!(p, "<p class=\"legend\"><span>{}failed attempts</span><span>{}failovers</span></p>", swatch("#cf222e"), swatch("#8250df"));
    if !all.origin_failures.is_empty() {
        p.push_str("<table><tr><th>origin</th><th class=\"n\">failed attempts</th></tr>");
        for (o, n) in &all.origin_failures {
            let _ = write!(p, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(o));
        }
        p.push_str("</table>");
    }
    p.push_str("</section>");

    p.push_str("<section><h2>Policy revisions</h2><table><tr><th>revision</th><th>first answered</th></tr>");
    let mut revs: Vec<(&String, &u64)> = fleet.revisions.iter().collect();
    by_count(&mut revs, |r| *r.1);
    for (rev, t) in revs.into_iter().take(10) {
        let _ = write!(p, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(rev), crate::dates::rfc3339_millis(*t));
    }
    p.push_str("</table></section>");

    let mut csp: Vec<(&String, &u64)> = all.csp.iter().collect();
    by_count(&mut csp, |c| *c.1);
    p.push_str("<section><h2>Top CSP violations (last hour)</h2>");
    if csp.is_empty() {
        p.push_str("<p class=\"muted\">None reported.</p>");
    } else {
        p.push_str("<table><tr><th>directive</th><th class=\"n\">violations</th></tr>");
        for (d, n) in csp.into_iter().take(10) {
            let _ = write!(p, "<tr data-csp=\"{}\"><td>{}</td><td class=\"n\">{n}</td></tr>", esc(d), esc(d));
        }
        p.push_str("</table>");
    }
    p.push_str("</section></body></html>");
    p
}

/// A legend's colour square.
fn swatch(color: &str) -> String {
    format!("<svg class=\"sw\" viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\" fill=\"{color}\"/></svg>")
}

/// Largest first, ties in their order. An insertion sort: the lists are a few dozen entries,
/// and the standard library's sorts add kilobytes of wasm per element type.
fn by_count<T>(v: &mut [T], key: impl Fn(&T) -> u64) {
    for i in 1..v.len() {
        let mut j = i;
        while let Some(prev) = j.checked_sub(1) {
            if v.get(prev).map(&key) >= v.get(j).map(&key) {
                break;
            }
            v.swap(prev, j);
            j = prev;
        }
    }
}

fn rules_text(sev: u8) -> String {
    BURN_RULES
        .iter()
        .filter(|r| r.severity == sev)
        .map(|r| format!("{}× over {} and {}", trim(r.factor), window_label(r.long_minutes), window_label(r.short_minutes)))
        .collect::<Vec<_>>()
        .join(", or ")
}

fn duration_label(ms: u64) -> String {
    if ms == 60_000 {
        "minute".to_owned()
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn bars(p: &mut String, title: &str, what: &str, counts: &BTreeMap<String, u64>) {
    let _ = write!(p, "<section><h2>{}</h2>", esc(title));
    if counts.is_empty() {
        p.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    by_count(&mut rows, |r| *r.1);
    let max = rows.first().map_or(1, |r| (*r.1).max(1)) as f64;
    let _ = write!(p, "<table><tr><th>{what}</th><th class=\"n\">requests</th><th></th></tr>");
    for (k, n) in rows.into_iter().take(12) {
        let w = (*n as f64 / max * 100.0).max(1.0);
        let _ = write!(
            p,
            "<tr data-{what}=\"{}\"><td>{}</td><td class=\"n\">{n}</td><td><svg viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" height=\"8\"><rect width=\"{w:.1}\" height=\"8\" fill=\"#d4a72c\"/></svg></td></tr>",
            esc(k),
            esc(k)
        );
    }
    p.push_str("</table></section>");
}

/// A 60-slot SVG chart, 400 units wide.
struct Chart {
    out: String,
    max: f64,
}

impl Chart {
    fn new(max: f64, unit: &str) -> Chart {
        let max = if max > 0.0 { nice(max) } else { 1.0 };
        let mut out = format!("<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"chart\">");
        for frac in [0.0, 0.5, 1.0] {
            let y = TOP + (H - TOP - BOTTOM) * (1.0 - frac);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
                LEFT - 3.0,
                y + 3.0,
                trim(max * frac)
            );
        }
        let _ = write!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#57606a\">−60</text><text x=\"{W}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#57606a\">now ({})</text>",
            H - 4.0,
            H - 4.0,
            esc(unit)
        );
        Chart { out, max }
    }

    fn x(&self, slot: usize) -> f64 {
        LEFT + (W - LEFT) * slot as f64 / 60.0
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (1.0 - (v / self.max).clamp(0.0, 1.0))
    }

    fn bar(&mut self, slot: usize, from: f64, to: f64, color: &str) {
        let (x, w) = (self.x(slot), (W - LEFT) / 60.0 - 1.0);
        let (y0, y1) = (self.y(to), self.y(from));
        let _ = write!(self.out, "<rect x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"/>", (y1 - y0).max(0.5));
    }

    fn line(&mut self, points: impl Iterator<Item = Option<f64>>, color: &str) {
        let half = (W - LEFT) / 120.0;
        let mut d = String::new();
        let mut dots = String::new();
        let mut pen = false;
        for (i, v) in points.enumerate() {
            match v {
                Some(v) => {
                    let (x, y) = (self.x(i) + half, self.y(v));
                    let _ = write!(d, "{}{x:.1},{y:.1} ", if pen { "L" } else { "M" });
                    // A dot per bucket: a lone bucket between gaps has no line to show it.
                    let _ = write!(dots, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"1.6\" fill=\"{color}\"/>");
                    pen = true;
                }
                None => pen = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(self.out, "<path d=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>{dots}", d.trim_end());
        }
    }

    fn threshold(&mut self, v: f64, label: &str) {
        let y = self.y(v);
        let _ = write!(
            self.out,
            "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\"/><text x=\"{W}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#cf222e\">{} {} ms</text>",
            y - 2.0,
            esc(label),
            trim(v)
        );
    }

    fn markers(&mut self, at: &[(usize, &str)]) {
        for (slot, rev) in at {
            let x = self.x(*slot);
            let _ = write!(
                self.out,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#8250df\" stroke-dasharray=\"2 2\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#8250df\">{}</text>",
                H - BOTTOM,
                x + 2.0,
                TOP + 8.0,
                esc(rev.get(..7).unwrap_or(rev))
            );
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// A round axis top at or above `x`: 1, 2 or 5 times a power of ten.
fn nice(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn empty_fleet_renders_a_page_that_needs_nothing_else() {
        let html = render(&Fleet::new(), 1_000_000);
        assert!(html.starts_with("<!doctype html>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("http://") && !html.contains("https://"), "no outside request");
        assert!(html.contains(STYLE));
        assert!(csp().starts_with("default-src 'none'; style-src 'sha256-"));
    }

    #[test]
    fn by_count_sorts_largest_first_and_keeps_ties_in_order() {
        let mut v = vec![("a", 1), ("b", 5), ("c", 1), ("d", 9), ("e", 5)];
        by_count(&mut v, |x| x.1);
        assert_eq!(v, [("d", 9), ("b", 5), ("e", 5), ("a", 1), ("c", 1)]);
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(130.0), 200.0);
        assert_eq!(nice(0.4), 0.5);
    }
}
