//! The response phase, described once: what the edge does to the headers of every response it
//! sends — the origin's, a stored copy's or its own — as an ordered list of [`Op`]s that the
//! worker's shell, the playground and `explain` only execute.
//!
//! The order is the contract: the route's header set first ([`static_ops`]: removals, defaults,
//! replacements — the same for every response on the route, so a shell may keep it), then what
//! depends on this response ([`ops`]): HSTS on https only, the route's `Cache-Control` on a 2xx
//! or 304 from the origin, the strict CSP choice for this body, the per-request headers
//! (RateLimit fields, `Retry-After`, `Location`, `X-Request-Id`…), and the `Set-Cookie`s to add.
//! A later operation wins over an earlier one on the same name.

use std::borrow::Cow;

use crate::bundle::Bundle;
use crate::csp::{self, StrictAction};
use crate::decision::{Action, Decision, OriginFailure};
use crate::headers::{append, dynamic, fallback_page_headers, set_for};

/// One header operation. Names are lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// Delete every value of the header.
    Remove(Cow<'a, str>),
    /// Set the header when the response has none.
    Default(Cow<'a, str>, Cow<'a, str>),
    /// Replace every value with this one (never a second copy).
    Set(Cow<'a, str>, Cow<'a, str>),
    /// Add a value next to those present (`Set-Cookie`).
    Append(Cow<'a, str>, Cow<'a, str>),
    /// Set the header to the value with [`csp::NONCE_PLACEHOLDER`] replaced by a fresh nonce
    /// (128 bits from the runtime's CSPRNG, base64): the strict CSP of this response.
    SetNonced(Cow<'a, str>, Cow<'a, str>),
    /// The body is an HTML page that gets the same nonce on every start tag
    /// [`csp::NONCE_SELECTORS`] lists. Its bytes change: `Content-Length` goes and a strong
    /// `ETag` becomes weak.
    RewriteBody,
}

impl Op<'_> {
    /// The operation's wire name: one character (crates/worker's `wire` module).
    pub fn code(&self) -> &'static str {
        match self {
            Op::Remove(_) => "-",
            Op::Default(..) => "?",
            Op::Set(..) => "=",
            Op::Append(..) => "+",
            Op::SetNonced(..) => "n",
            Op::RewriteBody => "r",
        }
    }

    /// The header name and value it carries ("" where it has none).
    pub fn parts(&self) -> (&str, &str) {
        match self {
            Op::Remove(n) => (n, ""),
            Op::Default(n, v) | Op::Set(n, v) | Op::Append(n, v) | Op::SetNonced(n, v) => (n, v),
            Op::RewriteBody => ("", ""),
        }
    }

    /// The operation from its wire name and parts; `None` for an unknown name.
    pub fn from_parts<'a>(code: &str, name: &'a str, value: &'a str) -> Option<Op<'a>> {
        let (n, v) = (Cow::Borrowed(name), Cow::Borrowed(value));
        Some(match code {
            "-" => Op::Remove(n),
            "?" => Op::Default(n, v),
            "=" => Op::Set(n, v),
            "+" => Op::Append(n, v),
            "n" => Op::SetNonced(n, v),
            "r" => Op::RewriteBody,
            _ => return None,
        })
    }
}

/// The response the edge is about to send, as far as the response phase reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent<'a> {
    /// The status the client gets.
    pub status: u16,
    /// The origin answered (directly or through a stored copy); `false` for the edge's own.
    pub from_origin: bool,
    /// The response's `Content-Type` and `Content-Encoding` ("" when absent). Read for the
    /// strict CSP choice only: a shell may leave them empty when the route has no strict CSP.
    pub content_type: &'a str,
    pub content_encoding: &'a str,
    /// The request's method is `HEAD`: no body is sent.
    pub head: bool,
}

/// The header set's operations: the same for every response on the decision's route.
pub fn static_ops<'a>(bundle: &'a Bundle, header_set: u16) -> Vec<Op<'a>> {
    let Some(set) = bundle.header_sets.get(usize::from(header_set)) else {
        return Vec::new();
    };
    let b = |s: &'a String| Cow::Borrowed(s.as_str());
    let mut out = Vec::with_capacity(
        set.remove
            .len()
            .saturating_add(set.default.len())
            .saturating_add(set.set.len()),
    );
    out.extend(set.remove.iter().map(|n| Op::Remove(b(n))));
    out.extend(set.default.iter().map(|(n, v)| Op::Default(b(n), b(v))));
    out.extend(set.set.iter().map(|(n, v)| Op::Set(b(n), b(v))));
    out
}

/// The operations that depend on this response, applied after [`static_ops`].
pub fn ops<'a>(bundle: &'a Bundle, d: &Decision, sent: &Sent) -> Vec<Op<'a>> {
    let set = set_for(bundle, d);
    let mut out = Vec::with_capacity(8);
    push_hsts(&mut out, bundle, d);
    let forward = d.action == Action::Forward && sent.from_origin;
    if let Some(cache) = set
        .cache
        .as_deref()
        .filter(|_| forward && ((200..300).contains(&sent.status) || sent.status == 304))
    {
        out.push(Op::Set(
            Cow::Borrowed("cache-control"),
            Cow::Borrowed(cache),
        ));
    }
    if let Some(strict) = set.strict.as_ref().filter(|_| forward) {
        let (header, value) = (
            Cow::Borrowed(strict.header.as_str()),
            Cow::Borrowed(strict.value.as_str()),
        );
        match csp::strict_action(
            sent.status,
            sent.content_type,
            sent.content_encoding,
            sent.head,
        ) {
            StrictAction::Legacy => {}
            StrictAction::Rewrite => {
                out.push(Op::SetNonced(header, value));
                out.push(Op::RewriteBody);
            }
            StrictAction::HeaderOnly => out.push(Op::SetNonced(header, value)),
            StrictAction::KeepCached => {
                out.push(Op::Remove(Cow::Borrowed("content-security-policy")));
                out.push(Op::Remove(Cow::Borrowed(
                    "content-security-policy-report-only",
                )));
            }
        }
    }
    out.extend(
        dynamic(bundle, d)
            .into_iter()
            .map(|(n, v)| Op::Set(Cow::Borrowed(n), v)),
    );
    out.extend(
        append(bundle, d)
            .into_iter()
            .map(|(n, v)| Op::Append(Cow::Borrowed(n), Cow::Owned(v))),
    );
    out
}

/// HSTS is sent on https only, and taken off a plain-http answer whatever the origin said.
fn push_hsts<'a>(out: &mut Vec<Op<'a>>, bundle: &'a Bundle, d: &Decision) {
    match set_for(bundle, d).hsts.as_deref().filter(|_| d.https) {
        Some(hsts) => out.push(Op::Set(
            Cow::Borrowed("strict-transport-security"),
            Cow::Borrowed(hsts),
        )),
        None => out.push(Op::Remove(Cow::Borrowed("strict-transport-security"))),
    }
}

/// What the edge sends when no origin answered a forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginDown<'a> {
    pub status: u16,
    /// problem+json, or `None` for the policy's fallback page (`[fallback]`'s HTML).
    pub problem: Option<String>,
    /// The operations after [`static_ops`] (which apply as to any answer of the route).
    pub ops: Vec<Op<'a>>,
}

/// No origin answered: the fallback page (503) for a page request when the policy has one,
/// else problem+json 504 (timeout) or 502. `origin` names the origin asked last.
pub fn origin_down<'a>(
    bundle: &'a Bundle,
    d: &Decision,
    failure: OriginFailure,
    origin: &str,
) -> OriginDown<'a> {
    let mut ops = Vec::with_capacity(6);
    push_hsts(&mut ops, bundle, d);
    let fallback = bundle.fallback.as_ref().filter(|_| d.page);
    let (status, problem) = match fallback {
        Some(f) => {
            ops.extend(
                fallback_page_headers(f.retry_after_secs.to_string())
                    .into_iter()
                    .map(|(n, v)| Op::Set(Cow::Borrowed(n), v)),
            );
            (503, None)
        }
        None => {
            ops.push(Op::Set(
                Cow::Borrowed("content-type"),
                Cow::Borrowed("application/problem+json"),
            ));
            ops.push(Op::Set(
                Cow::Borrowed("cache-control"),
                Cow::Borrowed("no-store"),
            ));
            (
                failure.status(),
                Some(failure.problem_json(origin, &d.request_id, &d.path_and_query)),
            )
        }
    };
    ops.push(Op::Set(
        Cow::Borrowed("x-request-id"),
        Cow::Owned(d.request_id.clone()),
    ));
    OriginDown {
        status,
        problem,
        ops,
    }
}

/// A response's headers as a list of `(name, value)`, names lowercase: what the response
/// phase is applied to when it is not a runtime's `Headers` (explain, the playground, tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(pub Vec<(String, String)>);

impl HeaderList {
    /// Apply `ops` in order; `nonce` stands in for the fresh nonce of [`Op::SetNonced`].
    pub fn apply(&mut self, ops: &[Op], nonce: &str) {
        for op in ops {
            match op {
                Op::Remove(n) => self.0.retain(|(name, _)| name != n),
                Op::Default(n, v) => {
                    if !self.0.iter().any(|(name, _)| name == n) {
                        self.0.push((n.to_string(), v.to_string()));
                    }
                }
                Op::Set(n, v) => self.set(n, v),
                Op::Append(n, v) => self.0.push((n.to_string(), v.to_string())),
                Op::SetNonced(n, v) => self.set(n, &v.replace(csp::NONCE_PLACEHOLDER, nonce)),
                Op::RewriteBody => {
                    self.0.retain(|(name, _)| name != "content-length");
                    if let Some((_, etag)) = self
                        .0
                        .iter_mut()
                        .find(|(name, v)| name == "etag" && !v.starts_with("W/"))
                    {
                        *etag = format!("W/{etag}");
                    }
                }
            }
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.0.iter().position(|(n, _)| n == name) {
            Some(first) => {
                let mut i = 0usize;
                self.0.retain(|(n, _)| {
                    let keep = n != name || i == first;
                    i = i.saturating_add(1);
                    keep
                });
                if let Some(slot) = self.0.iter_mut().find(|(n, _)| n == name) {
                    slot.1 = value.to_owned();
                }
            }
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }
}
