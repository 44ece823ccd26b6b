//! `[headers]` and per-route `headers`: presets, `set`/`default`/`remove`, and the checks that
//! keep a header name a token and a value free of CR, LF and non-visible bytes.

use std::collections::{BTreeMap, BTreeSet};

use core::ops::Range;

use crate::diagnostics::Diagnostic;
use crate::model::{Headers, Preset, S};
use crate::{Ctx, codes};

/// helmet 8's default headers, byte for byte, except CSP and HSTS which come from `[csp]` and
/// `[https]` (their preset defaults reproduce helmet's too).
pub const HELMET: [(&str, &str); 10] = [
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];

/// What `strict` changes or adds on top of helmet.
pub const STRICT_EXTRA: [(&str, &str); 3] = [
    ("x-frame-options", "DENY"),
    ("cross-origin-embedder-policy", "require-corp"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()",
    ),
];

/// Framing and hop-by-hop headers the edge must never set on a response.
const FORBIDDEN: [&str; 8] = ["connection", "content-length", "host", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"];

/// Header changes with lowercase names, deterministic order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderPlan {
    pub set: BTreeMap<String, String>,
    pub default: BTreeMap<String, String>,
    pub remove: BTreeSet<String>,
}

impl HeaderPlan {
    pub fn preset(preset: Preset) -> HeaderPlan {
        let mut plan = HeaderPlan::default();
        if preset == Preset::None {
            return plan;
        }
        for (n, v) in HELMET {
            plan.set.insert(n.to_owned(), v.to_owned());
        }
        plan.remove.insert("x-powered-by".to_owned());
        if preset == Preset::Strict {
            for (n, v) in STRICT_EXTRA {
                plan.set.insert(n.to_owned(), v.to_owned());
            }
            plan.remove.insert("server".to_owned());
        }
        plan
    }

    /// Layer written `set`/`default`/`remove` over this plan. A removed name also leaves the
    /// inherited `set` and `default`, so a route can drop a preset header.
    pub fn apply(&mut self, ctx: &mut Ctx, headers: &Headers) {
        let set = validated_map(ctx, headers.set.as_ref());
        let default = validated_map(ctx, headers.default.as_ref());
        let mut removed = BTreeSet::new();
        for name in headers.remove.iter().flatten() {
            if let Some(lower) = validate_name(ctx, name) {
                if set.contains_key(&lower) {
                    ctx.push(
                        Diagnostic::error(codes::HEADER_DUPLICATE, name.span(), format!("`{lower}` is both set and removed here"))
                            .help("keep it in one of `set` or `remove`"),
                    );
                }
                removed.insert(lower);
            }
        }
        for name in &removed {
            self.set.remove(name);
            self.default.remove(name);
            self.remove.insert(name.clone());
        }
        if let Some((name, _)) = headers.set.iter().flatten().find(|(n, _)| n.get_ref().eq_ignore_ascii_case("strict-transport-security")) {
            ctx.push(
                Diagnostic::error(codes::HEADER_NAME, name.span(), "HSTS is configured in [https], not as a plain header")
                    .help("write [https] hsts = { max_age = \"1y\", include_subdomains = true }; the edge sends it on https responses only"),
            );
        }
        for (n, v) in set {
            if n == "strict-transport-security" {
                continue;
            }
            self.remove.remove(&n);
            self.set.insert(n, v);
        }
        for (n, v) in default {
            self.default.insert(n, v);
        }
    }
}

/// Validate a header name; returns it lowercased.
pub fn validate_name(ctx: &mut Ctx, name: &S<String>) -> Option<String> {
    let text = name.get_ref();
    if text.is_empty() || !text.bytes().all(edgeguard_core::sanitize::is_tchar) {
        ctx.push(
            Diagnostic::error(codes::HEADER_NAME, name.span(), format!("`{text}` is not a valid header name"))
                .help("header names are tokens: letters, digits and !#$%&'*+-.^_`|~, no spaces or colons"),
        );
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if FORBIDDEN.contains(&lower.as_str()) {
        ctx.push(
            Diagnostic::error(codes::HEADER_NAME, name.span(), format!("`{text}` is a framing or hop-by-hop header and cannot be set by the edge"))
                .help("remove it from the policy; the runtime manages it"),
        );
        return None;
    }
    Some(lower)
}

/// Validate a header value: visible ASCII, spaces and tabs inside, nothing else.
pub fn validate_value(ctx: &mut Ctx, value: &str, span: Range<usize>) -> bool {
    let bad = value.bytes().find(|b| !(b.is_ascii_graphic() || *b == b' ' || *b == b'\t'));
    if let Some(b) = bad {
        let what = match b {
            b'\r' => "a carriage return (CR)".to_owned(),
            b'\n' => "a line feed (LF)".to_owned(),
            0 => "a NUL byte".to_owned(),
            b if b >= 0x80 => "non-ASCII text".to_owned(),
            b => format!("the control byte 0x{b:02x}"),
        };
        ctx.push(
            Diagnostic::error(codes::HEADER_VALUE, span, format!("this header value contains {what}"))
                .help("header values may hold visible ASCII, spaces and tabs only; CR/LF would split the response"),
        );
        return false;
    }
    if value != value.trim() {
        ctx.push(
            Diagnostic::error(codes::HEADER_VALUE, span, "this header value starts or ends with whitespace")
                .help("remove the surrounding spaces"),
        );
        return false;
    }
    true
}

fn validated_map(ctx: &mut Ctx, map: Option<&BTreeMap<S<String>, S<String>>>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for (name, value) in map.into_iter().flatten() {
        let Some(lower) = validate_name(ctx, name) else { continue };
        if let Some(first) = seen.get(&lower) {
            ctx.push(
                Diagnostic::error(codes::HEADER_DUPLICATE, name.span(), format!("`{}` is listed twice (header names ignore case)", name.get_ref()))
                    .related(first.clone(), "first listed here")
                    .help("keep one entry"),
            );
            continue;
        }
        seen.insert(lower.clone(), name.span());
        if validate_value(ctx, value.get_ref(), value.span()) {
            out.insert(lower, value.get_ref().clone());
        }
    }
    out
}
