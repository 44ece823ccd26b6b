//! `[slo.<name>]` and `[alerts]`, compiled: service level objectives over a set of routes, and
//! the multiwindow, multi-burn-rate alerts the fleet statistics object evaluates on them.
//!
//! An objective is a ratio of good events to all events over a rolling window:
//!
//! - **availability**: a request is good unless the client got a 5xx (the edge's own 502/503/504
//!   included: an origin the edge cannot reach is the service being down);
//! - **latency**: a request that reached the origin is good when its time (origin, or edge, as
//!   the SLO says) was at most the threshold. "p95 ≤ 200 ms" is "95 % of requests take ≤ 200 ms".
//!
//! The error budget is `1 − target`. The burn rate over a window is the share of bad events in
//! that window divided by the budget: 1 spends the budget exactly over the SLO window, 14.4
//! spends 2 % of a 30-day budget in one hour. The alerts are the Google SRE workbook's
//! ("Alerting on SLOs", table 5-8): each row fires when **both** its long and its short window
//! burn faster than its factor, so an alert fires fast on a real breach and resolves as soon as
//! the short window recovers.
//!
//! | severity | long window | short window | burn rate |
//! |---|---|---|---|
//! | page | 1h | 5m | 14.4 |
//! | page | 6h | 30m | 6 |
//! | ticket | 3d | 6h | 1 |
//!
//! Windows are counted in the statistics' buckets (`[stats] minute`, one minute by default), so
//! a test that sets `minute = "500ms"` runs the same rules 120 times faster.

use serde::{Deserialize, Serialize};

/// One `[slo.<name>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub name: String,
    /// Indices of the routes whose requests count toward it.
    pub routes: Vec<u32>,
    /// Those routes' patterns: the statistics name routes by pattern, across policy revisions.
    pub route_patterns: Vec<String>,
    /// Share of requests not answered 5xx, in millionths (999_000 = 99.9 %).
    pub availability_ppm: Option<u32>,
    pub latency: Option<Latency>,
    /// Bits of [`severity`]: which alerts this SLO raises.
    pub alerts: u8,
    /// The SLO window in buckets (30 days of minutes by default): what "error budget left" counts.
    pub window_buckets: u64,
}

/// A latency objective: `percentile` of requests take at most `threshold_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// In millionths: 950_000 = p95.
    pub percentile_ppm: u32,
    pub threshold_ms: u64,
    /// Which time: the origin's (to its response headers) or the edge's own.
    pub of: LatencyOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LatencyOf {
    Origin,
    Edge,
}

impl LatencyOf {
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyOf::Origin => "origin",
            LatencyOf::Edge => "edge",
        }
    }
}

/// Alert severities, as bits of [`Slo::alerts`].
pub mod severity {
    pub const PAGE: u8 = 1;
    pub const TICKET: u8 = 1 << 1;
}

/// `[alerts]`: where notifications go. Each value is the name of a worker variable (a secret)
/// holding the URL or token, never the URL itself: a policy is committed, webhooks are keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    /// A Slack incoming webhook (`{"text": …}` with blocks).
    pub slack_env: Option<String>,
    /// Any URL that takes the generic JSON body.
    pub webhook_env: Option<String>,
    /// Sent to `webhook` as `Authorization: Bearer <token>`.
    pub webhook_token_env: Option<String>,
    /// An `edgeguard_alert` event to `[observe.posthog]`'s host with the `POSTHOG_KEY` secret.
    pub posthog: bool,
    /// `[observe.posthog]`'s host, where that event goes.
    pub posthog_host: Option<String>,
}

/// One row of the alerting table: fires when both windows burn faster than `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRule {
    pub severity: u8,
    pub long_minutes: u64,
    pub short_minutes: u64,
    pub factor: f64,
}

/// The SRE workbook's multiwindow, multi-burn-rate rows (windows in minutes, i.e. buckets).
pub const BURN_RULES: [BurnRule; 3] = [
    BurnRule { severity: severity::PAGE, long_minutes: 60, short_minutes: 5, factor: 14.4 },
    BurnRule { severity: severity::PAGE, long_minutes: 360, short_minutes: 30, factor: 6.0 },
    BurnRule { severity: severity::TICKET, long_minutes: 4320, short_minutes: 360, factor: 1.0 },
];

/// The default SLO window: 30 days of minutes.
pub const DEFAULT_WINDOW_MINUTES: u64 = 30 * 24 * 60;

pub fn severity_name(bit: u8) -> &'static str {
    if bit == severity::TICKET { "ticket" } else { "page" }
}

/// A window of `minutes` buckets as an operator reads it: "5m", "1h", "3d".
pub fn window_label(minutes: u64) -> String {
    if minutes >= 1440 && minutes.is_multiple_of(1440) {
        format!("{}d", minutes / 1440)
    } else if minutes >= 60 && minutes.is_multiple_of(60) {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// The SLOs a request decided by route `route` (an index; `None` for the defaults or before
/// routing) counts toward, by name: what `explain` shows.
pub fn slos_for(slos: &[Slo], route: Option<u32>) -> Vec<&str> {
    let Some(route) = route else { return Vec::new() };
    slos.iter().filter(|s| s.routes.contains(&route)).map(|s| s.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn window_labels() {
        assert_eq!(window_label(5), "5m");
        assert_eq!(window_label(60), "1h");
        assert_eq!(window_label(360), "6h");
        assert_eq!(window_label(4320), "3d");
        assert_eq!(window_label(90), "90m");
    }

    #[test]
    fn slos_by_route() {
        let slo = |name: &str, routes: Vec<u32>| Slo {
            name: name.into(),
            routes,
            route_patterns: Vec::new(),
            availability_ppm: Some(999_000),
            latency: None,
            alerts: severity::PAGE,
            window_buckets: DEFAULT_WINDOW_MINUTES,
        };
        let slos = vec![slo("api", vec![0, 2]), slo("pages", vec![1]), slo("all", vec![0, 1, 2])];
        assert_eq!(slos_for(&slos, Some(0)), ["api", "all"]);
        assert_eq!(slos_for(&slos, Some(1)), ["pages", "all"]);
        assert!(slos_for(&slos, None).is_empty());
        assert!(slos_for(&slos, Some(7)).is_empty());
    }
}
