//! The `explain` contract: one JSON object per decision, as documented in docs/explain.md.
//! The CLI, the playground and tests all render decisions through this one function.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decision::{Action, Decision, Reason};
use crate::engine::Engine;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitReport {
    pub name: String,
    pub limit: u64,
    pub remaining: u64,
    pub reset: u64,
    /// What the request was counted by: `"ip"`, `"session:sub"`, `"header:x-api-key"`… A
    /// `session:` limit without a verified session says `"ip (no verified session)"`.
    pub key: String,
}

/// The session a route or its limit read (docs/sessions.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionReport {
    /// The `[sessions.<name>]` source.
    pub source: String,
    /// `"verified"`, `"absent"`, `"invalid"`, `"expired"`, `"unavailable"` or `"pending"` (the
    /// host has not answered the engine's ask yet).
    pub state: &'static str,
    /// Why, for a session that is not verified.
    pub detail: Option<&'static str>,
    /// `exp` of a verified session, seconds since the epoch.
    pub expires: Option<u64>,
    /// The claims the policy reads, from a verified session only.
    pub claims: BTreeMap<String, Vec<String>>,
}

fn session_report(bundle: &crate::Bundle, fact: &crate::decision::SessionFact) -> SessionReport {
    use crate::sessions::Resolved;
    let source = bundle.sessions.get(usize::from(fact.source));
    let (state, detail) = match &fact.resolved {
        Resolved::Verified(_) => ("verified", None),
        Resolved::Absent => ("absent", None),
        Resolved::Invalid(why) => ("invalid", Some(why.sentence())),
        Resolved::Expired => ("expired", None),
        Resolved::Unavailable => ("unavailable", Some("the key set could not be fetched, or the HS256 secret is not set")),
        Resolved::Ask(_) => ("pending", None),
    };
    let verified = match &fact.resolved {
        Resolved::Verified(s) => Some(s),
        _ => None,
    };
    let claims = verified
        .zip(source)
        .map(|(s, src)| src.claims.iter().zip(&s.claims).map(|(path, values)| (path.clone(), values.clone())).collect())
        .unwrap_or_default();
    SessionReport { source: source.map_or_else(String::new, |s| s.name.clone()), state, detail, expires: verified.map(|s| s.expires), claims }
}

/// [`RateLimitReport::key`].
fn limit_key_report(limit: &crate::bundle::Limit, d: &Decision) -> String {
    let by_session = limit.session.zip(d.verified_session()).and_then(|(k, s)| s.claim(k.claim).first()).is_some();
    if limit.key == crate::bundle::LimitKey::Session && !by_session {
        return "ip (no verified session)".to_owned();
    }
    limit.key_text()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub action: Action,
    pub status: Option<u16>,
    pub reason: Reason,
    pub route: Option<String>,
    pub origin: Option<String>,
    pub location: Option<String>,
    pub response_headers: BTreeMap<String, String>,
    pub remove_headers: Vec<String>,
    pub forward_headers: BTreeMap<String, String>,
    pub rate_limit: Option<RateLimitReport>,
    pub detail: String,
    // Extensions beyond the contract's required keys.
    /// The normalized path and query the origin receives.
    pub path: String,
    /// The `application/problem+json` body for refusals.
    pub problem: Option<serde_json::Value>,
    /// A shadow-mode limit, or the global shadow switch, let through a request the policy
    /// would have refused.
    pub shadow_refused: bool,
    /// For `forward`: how the origin was chosen and where a failed idempotent request would
    /// be retried.
    pub lane: Option<LaneReport>,
    /// For `forward` on a route with `[csp] strict = "nonce"`: the nonce-based policy HTML pages
    /// get (`response_headers` shows it as an HTML page receives it), else `null`.
    pub csp_nonce: Option<CspNonceReport>,
    /// For `forward`: the request's own headers the edge removes before forwarding (forwarding,
    /// method-override and Next.js internal headers, `[sanitize] strip_headers`), lowercase and
    /// sorted; [`with_request`] fills it in.
    pub strip_request_headers: Vec<String>,
    /// For `forward` on a route with an edge cache: whether the answer is looked up and stored,
    /// for how long, under which key — or why this request bypasses the cache. `null` otherwise.
    pub cache: Option<CacheReport>,
    /// For `forward`: what the client gets when no origin can answer (`"stale, else fallback
    /// page"`…), see docs/caching.md.
    pub on_origin_failure: Option<&'static str>,
    /// The session the route or its limit read, or `null` when neither reads one.
    pub session: Option<SessionReport>,
    /// The `[slo.<name>]` objectives this request counts toward (by its route), in policy
    /// order; empty when none does.
    pub slo: Vec<String>,
    /// What the edge knew about the client: bot category, location from `request.cf`, the
    /// shield's count. Never the raw user agent or address.
    pub client: ClientReport,
}

/// [`Explanation::client`] (docs/explain.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientReport {
    /// `{ category, verified, claimed, name }`, or `null` when no `bots` rule needed it.
    pub bot: Option<crate::bots::Bot>,
    /// `request.cf.country`, `continent` and `asn`; `null` when Cloudflare sent none.
    pub country: Option<String>,
    pub continent: Option<String>,
    pub asn: Option<u32>,
    /// With a `[shield]`: the client's count after this request, else `null`.
    pub suspicion: Option<SuspicionReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuspicionReport {
    /// Suspicious requests from this client in the current window.
    pub score: u32,
    pub threshold: u32,
    /// Seconds of suspension left (0: not suspended).
    pub suspended_for: u64,
    /// `"enforce"` or `"shadow"`.
    pub mode: &'static str,
    /// The signature this request matched: `{ kind, signature, in }`, else `null`.
    pub matched: Option<crate::shield::Hit>,
}

fn client_report(engine: &Engine, d: &Decision) -> ClientReport {
    let code = |c: Option<[u8; 2]>| c.map(|c| String::from_utf8_lossy(&c).into_owned());
    let shield = engine.bundle().shield.as_ref();
    ClientReport {
        bot: d.client.bot,
        country: code(d.client.country),
        continent: code(d.client.continent),
        asn: d.client.asn,
        suspicion: d.client.suspicion.zip(shield).map(|(s, cfg)| SuspicionReport {
            score: s.score,
            threshold: cfg.threshold,
            suspended_for: s.suspended_for,
            mode: if cfg.enforce { "enforce" } else { "shadow" },
            matched: d.client.signature,
        }),
    }
}

/// The edge cache for one forwarded request (docs/caching.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheReport {
    /// `"lookup"`: answered from a fresh copy, else forwarded and a storable answer stored;
    /// `"bypass"`: forwarded, nothing stored.
    pub mode: &'static str,
    /// Seconds a stored copy is fresh.
    pub edge: u64,
    pub stale_while_revalidate: u64,
    pub stale_if_error: u64,
    /// The Cache API key (before the `edgeguard-vary` part an answer with `Vary` adds).
    pub key: Option<String>,
    /// Why the request bypasses the cache.
    pub bypass: Option<String>,
    /// What makes an answer storable.
    pub stores: &'static str,
}

/// [`CacheReport::stores`].
pub const STORES: &str = "200, 203 or 204 answers without Set-Cookie, Cache-Control private/no-store/no-cache or Vary: *";

/// [`Explanation::on_origin_failure`] for a forwarded request.
fn on_origin_failure(d: &Decision, has_fallback: bool) -> &'static str {
    let stale = matches!(&d.cache, Some(crate::cache::Plan::Use { rule, .. }) if rule.sie_secs > 0 || rule.edge_secs > 0);
    match (stale, d.page && has_fallback) {
        (true, true) => "a stored copy within stale_if_error, else the fallback page (503)",
        (true, false) => "a stored copy within stale_if_error, else problem+json (502/504)",
        (false, true) => "the fallback page (503)",
        (false, false) => "problem+json (502/504)",
    }
}

fn cache_report(plan: &crate::cache::Plan) -> CacheReport {
    let rule = plan.rule();
    let (mode, key, bypass) = match plan {
        crate::cache::Plan::Use { key, .. } => ("lookup", Some(key.clone()), None),
        crate::cache::Plan::Bypass { why, .. } => ("bypass", None, Some(why.to_string())),
    };
    CacheReport { mode, edge: rule.edge_secs, stale_while_revalidate: rule.swr_secs, stale_if_error: rule.sie_secs, key, bypass, stores: STORES }
}

/// [`explain`], with what depends on the request's own headers: [`Explanation::strip_request_headers`].
pub fn with_request<'a>(engine: &Engine, d: &Decision, headers: impl IntoIterator<Item = &'a str>) -> Explanation {
    let mut e = explain(engine, d);
    if d.action == Action::Forward {
        let mut names: Vec<String> = headers.into_iter().filter(|n| engine.strips_request_header(n)).map(str::to_ascii_lowercase).collect();
        names.sort();
        names.dedup();
        e.strip_request_headers = names;
    }
    e
}

/// What strict CSP does on a forwarded response (docs/explain.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CspNonceReport {
    /// `"enforce"` (the strict policy replaces the legacy one on HTML pages) or `"report-only"`
    /// (HTML pages enforce the legacy policy and report against the strict one).
    pub mode: &'static str,
    /// The header HTML pages get the strict policy in.
    pub header: String,
    /// The strict policy, with [`crate::csp::NONCE_PLACEHOLDER`] where each response's fresh
    /// nonce goes (`'nonce-{nonce}'`).
    pub value: String,
    /// Which responses get it.
    pub applies_to: &'static str,
    /// The `content-security-policy` every other response gets (JSON, images, a `206`, a body
    /// in an encoding the edge cannot read), or `null` when none.
    pub otherwise: Option<String>,
}

/// [`CspNonceReport::applies_to`]; the exact rule is [`crate::csp::strict_action`].
pub const STRICT_APPLIES_TO: &str = "text/html responses";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneReport {
    pub reason: crate::origins::Lane,
    pub failover: Option<String>,
}

pub fn explain(engine: &Engine, d: &Decision) -> Explanation {
    let bundle = engine.bundle();
    // The response phase as the edge runs it (crate::response), on an origin answer assumed
    // to be a 200 HTML page (the edge's own answers as they are); the strict CSP's nonce is
    // shown as its placeholder.
    let forward = d.action == Action::Forward;
    let sent = crate::response::Sent {
        status: if forward { 200 } else { d.status.unwrap_or(200) },
        from_origin: forward,
        content_type: "text/html; charset=utf-8",
        content_encoding: "",
        head: false,
    };
    let mut list = crate::response::HeaderList::default();
    list.apply(&crate::response::static_ops(bundle, d.headers), crate::csp::NONCE_PLACEHOLDER);
    list.apply(&crate::response::ops(bundle, d, &sent), crate::csp::NONCE_PLACEHOLDER);
    let response_headers: BTreeMap<String, String> = list.0.into_iter().collect();
    // Strict CSP: the response is assumed to be an HTML page, as `response_headers` assumes a
    // 2xx; the edge's own answers are never HTML, so they keep the legacy policy.
    let set = crate::headers::set_for(bundle, d);
    let csp_nonce = set.strict.as_ref().filter(|_| d.action == Action::Forward).map(|strict| {
        let otherwise = set.set.iter().find(|(n, _)| n == "content-security-policy").map(|(_, v)| v.clone());
        let mode = if strict.header == "content-security-policy" { "enforce" } else { "report-only" };
        CspNonceReport {
            mode,
            header: strict.header.clone(),
            value: strict.value.clone(),
            applies_to: STRICT_APPLIES_TO,
            otherwise,
        }
    });
    let forward_headers = if d.action == Action::Forward {
        engine.forward_headers(d).into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
    } else {
        BTreeMap::new()
    };
    let rate_limit = d.rate_limit.and_then(|r| {
        let limit = bundle.limits.get(usize::from(r.limit))?;
        Some(RateLimitReport { name: limit.name.clone(), limit: limit.count, remaining: r.remaining, reset: r.reset_secs, key: limit_key_report(limit, d) })
    });
    Explanation {
        action: d.action,
        status: d.status,
        reason: d.reason,
        route: engine.rule(d).and_then(|r| r.pattern.clone()),
        origin: d.origin.and_then(|o| bundle.origins.get(usize::from(o))).map(|o| o.name.clone()),
        location: d.location.clone(),
        response_headers,
        remove_headers: set.remove.to_vec(),
        forward_headers,
        rate_limit,
        detail: d.detail.to_string(),
        path: d.path_and_query.clone(),
        problem: d.problem_json().and_then(|p| serde_json::from_str(&p).ok()),
        shadow_refused: d.shadowed.is_some() || d.rate_limit.is_some_and(|r| r.shadow_refused) || d.client.shield_shadowed,
        lane: d.lane.filter(|_| d.action == Action::Forward).map(|reason| LaneReport {
            reason,
            failover: d.failover.and_then(|o| bundle.origins.get(usize::from(o))).map(|o| o.name.clone()),
        }),
        csp_nonce,
        strip_request_headers: Vec::new(),
        cache: d.cache.as_ref().filter(|_| d.action == Action::Forward).map(cache_report),
        on_origin_failure: (d.action == Action::Forward).then(|| on_origin_failure(d, bundle.fallback.is_some())),
        session: d.session.as_ref().map(|f| session_report(bundle, f)),
        slo: match d.rule {
            crate::decision::RuleRef::Route(i) => crate::slo::slos_for(&bundle.slos, Some(i)).into_iter().map(str::to_owned).collect(),
            _ => Vec::new(),
        },
        client: client_report(engine, d),
    }
}
