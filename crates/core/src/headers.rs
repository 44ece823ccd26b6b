//! Stage 9: the header changes applied to every response, the origin's or the edge's own.

use std::borrow::Cow;

use crate::bundle::{Bundle, HeaderSet, method};
use crate::decision::{Action, Decision};
use crate::limits::rate_limit_header;
use crate::origins::lane_cookie;

/// Header changes for one response. Names are lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeaders<'a> {
    /// Replace any value the origin sent (never add a second copy).
    pub set: Vec<(&'a str, Cow<'a, str>)>,
    /// Added next to what the origin sent (`Set-Cookie`).
    pub append: Vec<(&'static str, String)>,
    /// Added only when the origin sent none.
    pub default: &'a [(String, String)],
    /// Removed from the origin's response.
    pub remove: &'a [String],
    /// `Cache-Control` to set on a successful (2xx or 304) origin response.
    pub cache_on_success: Option<&'a str>,
}

static EMPTY_SET: HeaderSet = HeaderSet { set: Vec::new(), default: Vec::new(), remove: Vec::new(), hsts: None, cache: None };

pub fn plan<'a>(bundle: &'a Bundle, d: &Decision) -> ResponseHeaders<'a> {
    let set_ref = bundle.header_sets.get(usize::from(d.headers)).unwrap_or(&EMPTY_SET);
    let mut set: Vec<(&'a str, Cow<'a, str>)> =
        set_ref.set.iter().map(|(n, v)| (n.as_str(), Cow::Borrowed(v.as_str()))).collect();
    if d.https
        && let Some(hsts) = &set_ref.hsts {
            set.push(("strict-transport-security", Cow::Borrowed(hsts.as_str())));
        }
    if let Some(rl) = d.rate_limit
        && let Some(limit) = bundle.limits.get(usize::from(rl.limit)) {
            set.push(("ratelimit-policy", Cow::Borrowed(limit.policy_header.as_str())));
            set.push(("ratelimit", Cow::Owned(rate_limit_header(&limit.name, rl.remaining, rl.reset_secs))));
            if d.action == Action::Reject && rl.retry_after_secs > 0 {
                set.push(("retry-after", Cow::Owned(rl.retry_after_secs.to_string())));
            }
        }
    match d.action {
        Action::Reject => {
            set.push(("content-type", Cow::Borrowed("application/problem+json")));
            set.push(("cache-control", Cow::Borrowed("no-store")));
        }
        Action::Redirect => {
            if let Some(location) = &d.location {
                set.push(("location", Cow::Owned(location.clone())));
            }
        }
        Action::Respond => {
            set.push(("content-type", Cow::Borrowed("application/health+json")));
            set.push(("cache-control", Cow::Borrowed("no-store")));
        }
        Action::Forward => {}
    }
    if let Some(mask) = d.allow {
        set.push(("allow", Cow::Owned(method::allow_value(mask))));
    }
    set.push(("x-request-id", Cow::Owned(d.request_id.clone())));
    // Later entries win: an edge-computed value replaces a rendered one of the same name.
    dedup_last_wins(&mut set);
    let mut append = Vec::new();
    if d.set_lane_cookie
        && let Some(cookie) = d.origin.and_then(|o| lane_cookie(bundle, o)) {
            append.push(("set-cookie", cookie));
        }
    let cache_on_success = if d.action == Action::Forward { set_ref.cache.as_deref() } else { None };
    ResponseHeaders { set, append, default: &set_ref.default, remove: &set_ref.remove, cache_on_success }
}

fn dedup_last_wins(set: &mut Vec<(&str, Cow<'_, str>)>) {
    let mut i = 0;
    while i < set.len() {
        let name = set.get(i).map(|(n, _)| *n).unwrap_or("");
        if set.iter().skip(i.saturating_add(1)).any(|(n, _)| *n == name) {
            set.remove(i);
        } else {
            i = i.saturating_add(1);
        }
    }
}
