//! The edge's health answer (draft-inadarei-api-health-check-06, `application/health+json`),
//! built from origin probe results the shell gathered.

use serde::Serialize;

use crate::bundle::Bundle;

/// One origin probe as the shell observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub origin: u16,
    /// Status of the probe response, `None` when the origin did not answer.
    pub status: Option<u16>,
    pub millis: u64,
    /// RFC 3339 time of the probe.
    pub time: String,
    /// Why the probe failed (timeout, connection error), if it did.
    pub error: Option<String>,
}

impl Probe {
    pub fn passed(&self) -> bool {
        self.status.is_some_and(|s| (200..400).contains(&s))
    }
}

#[derive(Serialize)]
struct Check<'a> {
    #[serde(rename = "componentId")]
    component_id: &'a str,
    #[serde(rename = "componentType")]
    component_type: &'static str,
    #[serde(rename = "observedValue")]
    observed_value: u64,
    #[serde(rename = "observedUnit")]
    observed_unit: &'static str,
    status: &'static str,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    status: &'static str,
    version: &'static str,
    #[serde(rename = "releaseId")]
    release_id: &'a str,
    #[serde(rename = "serviceId")]
    service_id: &'a str,
    description: String,
    checks: std::collections::BTreeMap<&'static str, Vec<Check<'a>>>,
}

/// `(HTTP status, body)`: `pass` when every origin answers, `warn` when at least one does
/// (routing sends traffic to the healthy one), `fail` when none does. 200 for pass/warn, 503
/// for fail.
pub fn report(bundle: &Bundle, probes: &[Probe]) -> (u16, String) {
    let all_pass = !probes.is_empty() && probes.iter().all(Probe::passed);
    // Routing skips an origin whose probe failed, so one healthy origin keeps the service up.
    let any_pass = probes.iter().any(Probe::passed);
    let status = if all_pass || (probes.is_empty() && bundle.origins.is_empty()) {
        "pass"
    } else if any_pass {
        "warn"
    } else {
        "fail"
    };
    let checks = probes
        .iter()
        .map(|p| Check {
            component_id: bundle.origins.get(usize::from(p.origin)).map_or("?", |o| o.name.as_str()),
            component_type: "origin",
            observed_value: p.millis,
            observed_unit: "ms",
            status: if p.passed() { "pass" } else { "fail" },
            time: &p.time,
            output: match (&p.error, p.status) {
                (Some(e), _) => Some(e.clone()),
                (None, Some(s)) if !p.passed() => Some(format!("probe answered {s}")),
                _ => None,
            },
        })
        .collect();
    let report = Report {
        status,
        version: env!("CARGO_PKG_VERSION"),
        release_id: &bundle.revision,
        service_id: &bundle.app.name,
        description: format!("edgeguard edge for {} ({})", bundle.app.name, bundle.app.environment),
        checks: [("origin:responseTime", checks)].into_iter().collect(),
    };
    let code = if status == "fail" { 503 } else { 200 };
    (code, serde_json::to_string(&report).unwrap_or_default())
}
