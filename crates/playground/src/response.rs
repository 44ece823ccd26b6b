//! The response the client receives: the engine's header plan applied to an origin response
//! in the order the worker's shell applies it (crates/worker/js/shell.mjs), each header marked
//! with what the edge did to it.

use edgeguard_core::{Action, Decision, Engine, csp};
use serde::{Deserialize, Serialize};

/// The origin's answer the page assumes (for `forward`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

fn ok() -> u16 {
    200
}

impl Origin {
    pub fn parse(json: &str) -> Result<Origin, String> {
        if json.trim().is_empty() {
            return Ok(Origin { status: 200, headers: Vec::new() });
        }
        serde_json::from_str(json).map_err(|e| format!("the origin response is not valid: {e}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The edge added it (the origin sent none, or the edge answered itself).
    Set,
    /// The edge replaced the origin's value.
    Replaced,
    /// A default: added because the origin sent none.
    Default,
    /// The origin's header, passed through.
    Kept,
    /// Added next to the origin's (Set-Cookie).
    Appended,
    /// The origin's header, removed by the edge.
    Removed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub name: String,
    /// The value the client receives (`null` for a removed header).
    pub value: Option<String>,
    pub change: Change,
    /// What the origin sent, when it sent this header.
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// The status the client receives.
    pub status: u16,
    /// Whether the origin answered (`forward`) or the edge did.
    pub from_origin: bool,
    /// In the order the client receives them, then the removed ones.
    pub headers: Vec<Header>,
}

/// `head`: the request's method is `HEAD` (strict CSP sends its header without a body then).
pub fn apply(engine: &Engine, d: &Decision, origin: &Origin, head: bool) -> Response {
    let forward = d.action == Action::Forward;
    let status = if forward { origin.status } else { d.status.unwrap_or(200) };
    let mut headers: Vec<Header> = if forward {
        origin
            .headers
            .iter()
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .filter(|(n, _)| !n.is_empty())
            .map(|(name, value)| Header { name, value: Some(value.clone()), change: Change::Kept, origin: Some(value) })
            .collect()
    } else {
        Vec::new()
    };
    let plan = engine.response_headers(d);
    for name in plan.remove {
        for h in headers.iter_mut().filter(|h| h.name == *name && h.change != Change::Removed) {
            h.change = Change::Removed;
            h.value = None;
        }
    }
    let present = |headers: &[Header], name: &str| headers.iter().any(|h| h.name == name && h.change != Change::Removed);
    for (name, value) in plan.default {
        if !present(&headers, name) {
            headers.push(Header { name: name.clone(), value: Some(value.clone()), change: Change::Default, origin: None });
        }
    }
    let set = |headers: &mut Vec<Header>, name: &str, value: &str| {
        let mut replaced = false;
        for h in headers.iter_mut().filter(|h| h.name == name && h.change != Change::Removed) {
            if replaced {
                // A second copy from the origin: set() leaves one.
                h.change = Change::Removed;
                h.value = None;
                continue;
            }
            replaced = true;
            h.change = if h.origin.is_some() { Change::Replaced } else { Change::Set };
            h.value = Some(value.to_owned());
        }
        if !replaced {
            headers.push(Header { name: name.to_owned(), value: Some(value.to_owned()), change: Change::Set, origin: None });
        }
    };
    // The shell's order: the header set's `set` (HSTS on https included), cache-control on a
    // successful forward, then the per-request headers, which `plan.set` lists last.
    let dynamic: Vec<(&str, String)> =
        edgeguard_core::headers::dynamic(engine.bundle(), d).into_iter().map(|(n, v)| (n, v.into_owned())).collect();
    let (per_request, static_set): (Vec<_>, Vec<_>) =
        plan.set.iter().partition(|(n, v)| dynamic.iter().any(|(dn, dv)| dn == n && dv.as_str() == v.as_ref()));
    for (name, value) in &static_set {
        set(&mut headers, name, value);
    }
    if let Some(cache) = plan.cache_on_success.filter(|_| forward && ((200..300).contains(&status) || status == 304)) {
        set(&mut headers, "cache-control", cache);
    }
    // `[csp] strict = "nonce"` on a forwarded response, as the shell decides it (the engine's
    // `strict_action`): an HTML page gets the strict policy, shown with its `{nonce}`
    // placeholder where the edge puts a fresh nonce; a 304 gets no CSP (the browser keeps the
    // one cached with the page); anything else keeps the legacy policy.
    if let Some(strict) = edgeguard_core::headers::set_for(engine.bundle(), d).strict.as_ref().filter(|_| forward) {
        let value_of = |headers: &[Header], name: &str| {
            headers.iter().find(|h| h.name == name && h.change != Change::Removed).and_then(|h| h.value.clone()).unwrap_or_default()
        };
        let (content_type, coding) = (value_of(&headers, "content-type"), value_of(&headers, "content-encoding"));
        match csp::strict_action(status, &content_type, &coding, head) {
            csp::StrictAction::Rewrite | csp::StrictAction::HeaderOnly => set(&mut headers, &strict.header, &strict.value),
            csp::StrictAction::KeepCached => {
                let is_csp = |h: &Header| h.name == "content-security-policy" || h.name == "content-security-policy-report-only";
                headers.retain(|h| !(is_csp(h) && h.origin.is_none()));
                for h in headers.iter_mut().filter(|h| is_csp(h)) {
                    h.change = Change::Removed;
                    h.value = None;
                }
            }
            csp::StrictAction::Legacy => {}
        }
    }
    for (name, value) in &per_request {
        set(&mut headers, name, value);
    }
    for (name, value) in plan.append {
        headers.push(Header { name: name.to_owned(), value: Some(value), change: Change::Appended, origin: None });
    }
    // Removed ones last, so the list reads as the response.
    headers.sort_by_key(|h| h.change == Change::Removed);
    Response { status, from_origin: forward, headers }
}
