//! The CSP of a rule: directives with their fallbacks, and whether one source list covers another.

use std::collections::BTreeSet;


use super::headers::{CspMode, CspView};
use super::Verdict;
use super::rules::{Delta, Facet, delta, list};


/// Fetch directives and where a browser looks when one is missing (CSP Level 3).
fn csp_fallbacks(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "script-src-elem" | "script-src-attr" => &["script-src", "default-src"],
        "style-src-elem" | "style-src-attr" => &["style-src", "default-src"],
        "worker-src" => &["child-src", "script-src", "default-src"],
        "frame-src" => &["child-src", "default-src"],
        "fenced-frame-src" => &["frame-src", "child-src", "default-src"],
        "child-src" | "connect-src" | "font-src" | "img-src" | "manifest-src" | "media-src" | "object-src" | "prefetch-src"
        | "script-src" | "style-src" => &["default-src"],
        "default-src" | "base-uri" | "form-action" | "frame-ancestors" | "navigate-to" => &[],
        _ => return None,
    })
}

/// What a source-list directive effectively allows: its own list or its fallback's, and the
/// directive it came from; `None` when nothing restricts it.
fn csp_effective<'c>(csp: &'c CspView, name: &str) -> Option<(&'c str, BTreeSet<&'c str>)> {
    let chain = csp_fallbacks(name).unwrap_or(&[]);
    core::iter::once(name).chain(chain.iter().copied()).find_map(|d| {
        csp.directives.get_key_value(d).map(|(k, sources)| {
            // 'none' alone means nothing; 'report-sample' allows nothing.
            let set = sources.iter().map(String::as_str).filter(|s| *s != "'none'" && *s != "'report-sample'").collect();
            (k.as_str(), set)
        })
    })
}

const UNSAFE_KEYWORDS: [&str; 3] = ["'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'"];

pub(super) fn diff_csp(o: &CspView, n: &CspView, base: Option<(&CspView, &CspView)>, out: &mut Vec<Delta>) {
    let mode_inherited = base.is_some_and(|(bo, bn)| bo.mode == o.mode && bn.mode == n.mode);
    if o.mode != n.mode && !mode_inherited {
        let verdict = if n.mode < o.mode { Verdict::Weakened } else { Verdict::Strengthened };
        out.push(delta(
            Facet::Csp("mode".to_owned()),
            verdict,
            format!("{} → {}", o.mode.as_str(), n.mode.as_str()),
            Some(o.mode.as_str().to_owned()),
            Some(n.mode.as_str().to_owned()),
        ));
    }
    // Turning the CSP off (or on) is the change; its directives do not apply on the off side.
    if o.mode == CspMode::Off || n.mode == CspMode::Off {
        return;
    }
    let moot = o.mode == CspMode::ReportOnly && n.mode == CspMode::ReportOnly;
    let names: BTreeSet<&String> = o.directives.keys().chain(n.directives.keys()).collect();
    for name in names {
        let (a, b) = (o.directives.get(name), n.directives.get(name));
        if a == b || base.is_some_and(|(bo, bn)| bo.directives.get(name) == a && bn.directives.get(name) == b) {
            continue;
        }
        let start = out.len();
        directive_deltas(name, o, n, out);
        if moot {
            for d in out.iter_mut().skip(start) {
                if d.verdict != Verdict::Neutral {
                    d.verdict = Verdict::Neutral;
                    d.text.push_str(" (report-only: nothing is enforced)");
                }
            }
        }
    }
}

fn joined(set: Option<&BTreeSet<String>>) -> Option<String> {
    set.map(|s| s.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
}

fn directive_deltas(name: &str, o: &CspView, n: &CspView, out: &mut Vec<Delta>) {
    let (a, b) = (o.directives.get(name), n.directives.get(name));
    let facet = || Facet::Csp(name.to_owned());
    let (ov, nv) = (joined(a), joined(b));
    let push = |out: &mut Vec<Delta>, verdict: Verdict, text: String| out.push(delta(facet(), verdict, text, ov.clone(), nv.clone()));
    if csp_fallbacks(name).is_some() {
        let (ea, eb) = (csp_effective(o, name), csp_effective(n, name));
        let now = match &eb {
            Some((from, _)) => format!("falls back to {from} now"),
            None => "nothing restricts it now".to_owned(),
        };
        let before = match &ea {
            Some((from, _)) => format!("it fell back to {from} before"),
            None => "nothing restricted it before".to_owned(),
        };
        let (verdict, detail) = compare_sources(ea.as_ref().map(|e| &e.1), eb.as_ref().map(|e| &e.1));
        match (a, b) {
            (Some(_), None) => push(out, verdict, format!("directive removed ({now}){detail}")),
            (None, Some(_)) => push(out, verdict, format!("directive added ({before}){detail}")),
            (Some(x), Some(y)) => {
                let before = out.len();
                let (sx, sy) = (ea.map(|e| e.1).unwrap_or_default(), eb.map(|e| e.1).unwrap_or_default());
                for kw in UNSAFE_KEYWORDS {
                    if sy.contains(kw) && !sx.contains(kw) {
                        push(out, Verdict::Weakened, format!("{kw} introduced"));
                    }
                }
                let added: Vec<&str> = sy.iter().copied().filter(|s| !UNSAFE_KEYWORDS.contains(s) && !sx.iter().any(|o| covers(o, s))).collect();
                let dropped: Vec<&str> = sx.iter().copied().filter(|s| !sy.iter().any(|n| covers(n, s))).collect();
                if !added.is_empty() {
                    push(out, Verdict::Weakened, format!("sources added: {}", added.join(" ")));
                }
                if !dropped.is_empty() {
                    push(out, Verdict::Strengthened, format!("sources removed: {}", dropped.join(" ")));
                }
                if out.len() == before {
                    // Only rewritten: sources already covered by others, 'none', 'report-sample'.
                    let plus: Vec<&String> = y.difference(x).collect();
                    let minus: Vec<&String> = x.difference(y).collect();
                    push(out, Verdict::Neutral, format!("sources rewritten (+{} −{}), same effect", list(plus), list(minus)));
                }
            }
            (None, None) => {}
        }
        return;
    }
    let verdict_text = match name {
        "report-uri" | "report-to" => (Verdict::Neutral, format!("{} → {}", ov.as_deref().unwrap_or("(none)"), nv.as_deref().unwrap_or("(none)"))),
        _ => match (a, b) {
            (Some(_), None) => (Verdict::Weakened, "directive removed".to_owned()),
            (None, Some(_)) => (Verdict::Strengthened, "directive added".to_owned()),
            (Some(x), Some(y)) => {
                // sandbox: each allow-* token lifts a restriction; trusted-types: each policy
                // name is one more allowed; others are single values.
                let plus: Vec<&String> = y.difference(x).collect();
                let minus: Vec<&String> = x.difference(y).collect();
                let verdict = match name {
                    "sandbox" | "trusted-types" if !plus.is_empty() => Verdict::Weakened,
                    "sandbox" | "trusted-types" => Verdict::Strengthened,
                    "webrtc" if y.contains("'allow'") => Verdict::Weakened,
                    "webrtc" => Verdict::Strengthened,
                    _ => Verdict::Neutral,
                };
                (verdict, format!("{} → {} (+{} −{})", ov.as_deref().unwrap_or(""), nv.as_deref().unwrap_or(""), list(plus), list(minus)))
            }
            (None, None) => (Verdict::Neutral, String::new()),
        },
    };
    push(out, verdict_text.0, verdict_text.1);
}

/// Verdict for a change of effective source list (`None` = unrestricted), with a detail that
/// names what is newly allowed or no longer allowed.
fn compare_sources(a: Option<&BTreeSet<&str>>, b: Option<&BTreeSet<&str>>) -> (Verdict, String) {
    match (a, b) {
        (None, None) => (Verdict::Neutral, String::new()),
        (Some(_), None) => (Verdict::Weakened, ": any source is allowed".to_owned()),
        (None, Some(_)) => (Verdict::Strengthened, String::new()),
        (Some(x), Some(y)) => {
            let added: Vec<&str> = y.iter().copied().filter(|s| !x.iter().any(|o| covers(o, s))).collect();
            let dropped: Vec<&str> = x.iter().copied().filter(|s| !y.iter().any(|n| covers(n, s))).collect();
            let mut detail = String::new();
            if !added.is_empty() {
                detail.push_str(&format!("; now allows {}", added.join(" ")));
            }
            if !dropped.is_empty() {
                detail.push_str(&format!("; no longer allows {}", dropped.join(" ")));
            }
            let verdict = match (added.is_empty(), dropped.is_empty()) {
                (false, _) => Verdict::Weakened,
                (true, false) => Verdict::Strengthened,
                (true, true) => Verdict::Neutral,
            };
            (verdict, detail)
        }
    }
}

/// Whether CSP source `a` allows everything source `b` allows (a conservative subset of the
/// CSP matching rules: equal sources, `*`, scheme sources, `*.` host wildcards, path prefixes).
pub(super) fn covers(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.starts_with('\'') || b.starts_with('\'') {
        return false;
    }
    let scheme_source = |s: &str| s.strip_suffix(':').filter(|x| !x.contains('/')).map(str::to_ascii_lowercase);
    let scheme_ok = |outer: &str, inner: &str| outer == inner || (outer == "http" && inner == "https") || (outer == "ws" && inner == "wss");
    let network = |scheme: &str| matches!(scheme, "http" | "https" | "ws" | "wss");
    let split = |s: &str| -> (Option<String>, String, String) {
        let (scheme, rest) = match s.split_once("://") {
            Some((sc, rest)) => (Some(sc.to_ascii_lowercase()), rest),
            None => (None, s),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("")),
            None => (rest, ""),
        };
        (scheme, host.to_ascii_lowercase(), path.to_owned())
    };
    if a == "*" {
        return match scheme_source(b) {
            Some(sb) => network(&sb),
            None => true,
        };
    }
    if let Some(sa) = scheme_source(a) {
        return match scheme_source(b) {
            Some(sb) => scheme_ok(&sa, &sb),
            None => split(b).0.is_some_and(|sb| scheme_ok(&sa, &sb)),
        };
    }
    if b == "*" || scheme_source(b).is_some() {
        return false;
    }
    let ((sa, ha, pa), (sb, hb, pb)) = (split(a), split(b));
    let scheme = match (&sa, &sb) {
        (None, None) => true,
        (None, Some(x)) => network(x),
        (Some(x), Some(y)) => scheme_ok(x, y),
        (Some(_), None) => false,
    };
    let host = ha == hb || ha == "*" || ha.strip_prefix('*').is_some_and(|suffix| suffix.starts_with('.') && hb.ends_with(suffix));
    let path = pa.is_empty() || pa == pb || (pa.ends_with('/') && pb.starts_with(&pa));
    scheme && host && path
}

