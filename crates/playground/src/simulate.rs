//! The rate-limit simulator: N identical requests at a chosen rate on a simulated clock (no
//! waiting), against one limiter, each decided by the engine exactly as `explain` decides one.

use edgeguard_core::{Action, explain};
use serde::Serialize;

use crate::input::PlayRequest;
use crate::{engine, error_json, to_json};

/// Most requests one simulation runs (a chart of more says nothing more).
pub const MAX_STEPS: u32 = 10_000;

/// One request of the simulation.
#[derive(Serialize)]
pub struct Step {
    /// 1-based request number.
    pub n: u32,
    /// Seconds since the first request.
    pub t: f64,
    pub action: Action,
    /// The edge's status; `null` when forwarded (the origin answers).
    pub status: Option<u16>,
    pub reason: &'static str,
    /// `false` when the edge refused the request (any refusal, not only 429).
    pub allowed: bool,
    /// The limit's `remaining` after this request (`null` when no limit applies).
    pub remaining: Option<u64>,
    /// Seconds until the full burst is back.
    pub reset: Option<u64>,
    /// The `RateLimit` response header the client receives.
    pub ratelimit: Option<String>,
    pub retry_after: Option<String>,
}

#[derive(Serialize)]
pub struct LimitInfo {
    pub name: String,
    /// Requests per window, window seconds, burst.
    pub count: u64,
    pub window_secs: u64,
    pub burst: u64,
    /// The `RateLimit-Policy` header.
    pub policy: String,
    pub shadow: bool,
}

/// The simulation's answer.
#[derive(Serialize)]
pub struct Simulation {
    pub count: u32,
    /// Requests per second (0: all at the same instant).
    pub rate_per_sec: f64,
    pub allowed: u32,
    pub refused: u32,
    /// Of the refused, how many by a rate limit (429).
    pub rate_limited: u32,
    /// 1-based number of the first refused request.
    pub first_refused: Option<u32>,
    /// The limit the route is under, from the first decision that reported one.
    pub limit: Option<LimitInfo>,
    pub steps: Vec<Step>,
}

pub fn run(source: &str, env: &str, request_json: &str, count: u32, rate_per_sec: f64) -> Result<String, String> {
    let play = PlayRequest::parse(request_json).map_err(|e| error_json(&e))?;
    if count == 0 || count > MAX_STEPS {
        return Err(error_json(&format!("the number of requests must be between 1 and {MAX_STEPS}; got {count}")));
    }
    let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 { rate_per_sec } else { 0.0 };
    let (engine, _) = engine(source, env)?;
    let request = play.build(&engine).map_err(|e| error_json(&e))?;
    let start = play.now().map_err(|e| error_json(&e))?;
    let mut draws = play.draws();
    let mut limiter = engine.new_limiter(draws.limiter_seed());
    let bundle = engine.bundle();

    let mut sim = Simulation {
        count,
        rate_per_sec: rate,
        allowed: 0,
        refused: 0,
        rate_limited: 0,
        first_refused: None,
        limit: None,
        steps: Vec::with_capacity(count as usize),
    };
    request.with_facts(|facts| {
        for i in 0..count {
            let offset_ns = if rate > 0.0 { (f64::from(i) * 1e9 / rate).round() as u64 } else { 0 };
            let now = start.saturating_add(offset_ns);
            let d = engine.decide_standalone(facts, &mut limiter, now, draws.next());
            let e = explain(&engine, &d);
            let n = i.saturating_add(1);
            let allowed = e.action != Action::Reject;
            if allowed {
                sim.allowed = sim.allowed.saturating_add(1);
            } else {
                sim.refused = sim.refused.saturating_add(1);
                sim.first_refused.get_or_insert(n);
                if e.status == Some(429) {
                    sim.rate_limited = sim.rate_limited.saturating_add(1);
                }
            }
            let first_limit = if sim.limit.is_none() { d.rate_limit.and_then(|r| bundle.limits.get(usize::from(r.limit))) } else { None };
            if let Some(limit) = first_limit {
                sim.limit = Some(LimitInfo {
                    name: limit.name.clone(),
                    count: limit.count,
                    window_secs: limit.window_secs,
                    burst: limit.burst,
                    policy: limit.policy_header.clone(),
                    shadow: limit.shadow,
                });
            }
            sim.steps.push(Step {
                n,
                t: offset_ns as f64 / 1e9,
                action: e.action,
                status: e.status,
                reason: e.reason.code(),
                allowed,
                remaining: e.rate_limit.as_ref().map(|r| r.remaining),
                reset: e.rate_limit.as_ref().map(|r| r.reset),
                ratelimit: e.response_headers.get("ratelimit").cloned(),
                retry_after: e.response_headers.get("retry-after").cloned(),
            });
        }
    });
    Ok(to_json(&sim))
}
