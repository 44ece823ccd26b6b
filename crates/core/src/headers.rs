//! Stage 9: the header changes applied to every response, the origin's or the edge's own.
//!
//! They come in two parts: the route's precomputed [`HeaderSet`] (the same for every request
//! on the route, so a shell can cache it) and a few per-request headers ([`dynamic`]); the
//! order they apply in is crate::response's.

use std::borrow::Cow;

use crate::bundle::{Bundle, HeaderSet, method};
use crate::decision::{Action, Decision, Endpoint};
use crate::limits::rate_limit_header;
use crate::origins::lane_cookie;

static EMPTY_SET: HeaderSet = HeaderSet { set: Vec::new(), default: Vec::new(), remove: Vec::new(), hsts: None, cache: None, strict: None };

/// The header set a decision uses.
pub fn set_for<'a>(bundle: &'a Bundle, d: &Decision) -> &'a HeaderSet {
    bundle.header_sets.get(usize::from(d.headers)).unwrap_or(&EMPTY_SET)
}

/// Per-request headers, applied after the header set (they win over it): rate-limit fields,
/// `Retry-After`, `Location`, `Allow`, the edge's own content type, `X-Request-Id`.
pub fn dynamic<'a>(bundle: &'a Bundle, d: &Decision) -> Vec<(&'static str, Cow<'a, str>)> {
    let mut out: Vec<(&'static str, Cow<'a, str>)> = Vec::with_capacity(6);
    // A shadow limit never refuses, so it must not tell clients to slow down either.
    if let Some((rl, limit)) = d.rate_limit.and_then(|rl| bundle.limits.get(usize::from(rl.limit)).map(|l| (rl, l))).filter(|(_, l)| !l.shadow) {
        out.push(("ratelimit-policy", Cow::Borrowed(limit.policy_header.as_str())));
        out.push(("ratelimit", Cow::Owned(rate_limit_header(&limit.name, rl.remaining, rl.reset_secs))));
        if d.action == Action::Reject && rl.retry_after_secs > 0 {
            out.push(("retry-after", Cow::Owned(rl.retry_after_secs.to_string())));
        }
    }
    match d.action {
        Action::Reject if d.reason == crate::Reason::Maintenance => {
            let retry = bundle.maintenance.retry_after_secs.to_string();
            if d.is_fallback_page() {
                out.extend(fallback_page_headers(retry));
            } else {
                out.push(("content-type", Cow::Borrowed("application/problem+json")));
                out.push(("cache-control", Cow::Borrowed("no-store")));
                out.push(("retry-after", Cow::Owned(retry)));
            }
        }
        Action::Reject => {
            out.push(("content-type", Cow::Borrowed("application/problem+json")));
            out.push(("cache-control", Cow::Borrowed("no-store")));
            if let Some(secs) = d.shield_retry_after() {
                out.push(("retry-after", Cow::Owned(secs.to_string())));
            }
        }
        Action::Redirect => {
            if let Some(location) = &d.location {
                out.push(("location", Cow::Owned(location.clone())));
            }
        }
        Action::Respond => {
            match d.endpoint {
                Some(Endpoint::Metrics) => out.push(("content-type", Cow::Borrowed(crate::vocab::METRICS_CONTENT_TYPE))),
                Some(Endpoint::Dashboard) => {
                    out.push(("content-type", Cow::Borrowed("text/html; charset=utf-8")));
                    out.push(("content-security-policy", Cow::Owned(crate::dashboard::csp())));
                }
                // 204: no body, no content type.
                Some(Endpoint::CspReport(_)) => {}
                _ => out.push(("content-type", Cow::Borrowed("application/health+json"))),
            }
            out.push(("cache-control", Cow::Borrowed("no-store")));
        }
        Action::Forward => {}
    }
    if let Some(mask) = d.allow {
        out.push(("allow", Cow::Owned(method::allow_value(mask))));
    }
    out.push(("x-request-id", Cow::Owned(d.request_id.clone())));
    out
}

/// The headers of the fallback page (`[fallback]`), answered with 503: HTML, never stored,
/// `Retry-After`, and a CSP of its own: the page is static, whatever the app's CSP allows.
pub fn fallback_page_headers<'a>(retry_after_secs: String) -> [(&'static str, Cow<'a, str>); 4] {
    [
        ("content-type", Cow::Borrowed("text/html; charset=utf-8")),
        ("cache-control", Cow::Borrowed("no-store")),
        ("retry-after", Cow::Owned(retry_after_secs)),
        ("content-security-policy", Cow::Borrowed(crate::cache::FALLBACK_CSP)),
    ]
}

/// `Set-Cookie` values to append (the sticky lane).
pub fn append(bundle: &Bundle, d: &Decision) -> Vec<(&'static str, String)> {
    match d.origin.filter(|_| d.set_lane_cookie).and_then(|o| lane_cookie(bundle, o)) {
        Some(cookie) => vec![("set-cookie", cookie)],
        None => Vec::new(),
    }
}
