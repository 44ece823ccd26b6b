//! The leaf vocabulary of the engine: small types and wire names every layer shares. It imports
//! nothing from the crate, so every module may use it (the layer order is in `lib.rs`). Each item
//! is re-exported where it was first defined (`limits::Nanos`, `origins::Lane`,
//! `engine::Overrides`, `observe::ReportFormat`…), so those paths keep working.

use core::hash::{BuildHasher, Hasher};

use serde::Serialize;

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// Nanoseconds since an arbitrary epoch, supplied by the shell.
pub type Nanos = u64;

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Nanoseconds as whole seconds, rounded up.
pub fn ceil_secs(ns: Nanos) -> u64 {
    ns.div_ceil(NANOS_PER_SEC)
}

// ---------------------------------------------------------------------------------------------
// Keyed-hash tables (the limiter, the shield's tracker, the CSP report dedupe)
// ---------------------------------------------------------------------------------------------

/// Identity hasher: keys are already keyed hashes.
#[derive(Default, Clone, Copy)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default, Clone, Copy)]
pub struct BuildPreHashed;

impl BuildHasher for BuildPreHashed {
    type Hasher = PreHashed;
    fn build_hasher(&self) -> PreHashed {
        PreHashed(0)
    }
}

// ---------------------------------------------------------------------------------------------
// RateLimit header fields (draft-ietf-httpapi-ratelimit-headers)
// ---------------------------------------------------------------------------------------------

/// `RateLimit-Policy` item: `"name";q=count;w=window`.
pub fn policy_header(name: &str, quota: u64, window_secs: u64) -> String {
    sf_item(name, &[("q", quota), ("w", window_secs)])
}

/// `RateLimit` item: `"name";r=remaining;t=reset`.
pub fn rate_limit_header(name: &str, remaining: u64, reset_secs: u64) -> String {
    sf_item(name, &[("r", remaining), ("t", reset_secs)])
}

/// One structured-field item: a string with integer parameters (RFC 9651), written by sfv's
/// incremental serializer straight into one string — it runs for every rate-limited response,
/// so nothing is built just to be serialized. A name that is not a valid sf-string (the
/// compiler refuses those) gives "".
fn sf_item(name: &str, params: &[(&'static str, u64)]) -> String {
    use sfv::{Integer, KeyRef, StringRef};
    let Ok(name) = StringRef::from_str(name) else { return String::new() };
    let mut out = String::with_capacity(name.as_str().len().saturating_add(24));
    let mut item = sfv::ItemSerializer::with_buffer(&mut out).bare_item(name);
    for (key, value) in params {
        let Ok(key) = KeyRef::from_str(key) else { continue };
        let value = Integer::try_from(i64::try_from(*value).unwrap_or(i64::MAX)).unwrap_or(Integer::MAX);
        item = item.parameter(key, value);
    }
    let _written: &mut String = item.finish();
    out
}

// ---------------------------------------------------------------------------------------------
// Decision vocabulary: origin lanes, operational overrides, edge endpoints
// ---------------------------------------------------------------------------------------------

/// Why a request went to its origin (shown by `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// The route pins an origin.
    Pinned,
    /// No canary runs (or it is at 0 %): the active origin.
    Active,
    /// The client's lane cookie names this origin.
    Sticky,
    /// A new client drawn into the canary share.
    CanaryDraw,
    /// A new client drawn outside the canary share.
    ActiveDraw,
    /// The usual origin's last health probe failed; this one is healthy.
    HealthReroute,
}

impl Lane {
    /// The name serde gives it (snake_case), for writers that skip serde.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Pinned => "pinned",
            Lane::Active => "active",
            Lane::Sticky => "sticky",
            Lane::CanaryDraw => "canary_draw",
            Lane::ActiveDraw => "active_draw",
            Lane::HealthReroute => "health_reroute",
        }
    }
}

/// Operational levers read from the deployment (worker vars), applied without a rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Origin that takes traffic instead of `deploy.active`.
    pub active: Option<u16>,
    /// Canary share in basis points instead of `deploy.canary.percent`.
    pub canary_basis_points: Option<u32>,
    /// Log what would be refused, refuse nothing the routing, access or limit rules refuse.
    pub shadow: bool,
    /// Maintenance mode (`EDGE_MAINTENANCE`): everyone outside `[maintenance]`'s allow-list gets
    /// 503 (the fallback page for page requests), the edge's own endpoints keep answering.
    pub maintenance: bool,
}

/// The two report formats browsers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// `report-uri`: `application/csp-report`, `{"csp-report": {…}}`.
    CspReport,
    /// `report-to` (Reporting API): `application/reports+json`, `[{"type": "csp-violation", "body": {…}}, …]`.
    ReportsJson,
}

impl ReportFormat {
    /// The format a `Content-Type` names (parameters and case ignored), if it is one of the two.
    pub fn from_content_type(value: &str) -> Option<ReportFormat> {
        let media = value.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/csp-report") {
            Some(ReportFormat::CspReport)
        } else if media.eq_ignore_ascii_case("application/reports+json") {
            Some(ReportFormat::ReportsJson)
        } else {
            None
        }
    }
}

/// `Content-Type` of the metrics endpoint: Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

