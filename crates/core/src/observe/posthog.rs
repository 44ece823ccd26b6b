//! PostHog events: anonymous (no person profiles), keyed by request id, with only what the
//! policy's `[observe.posthog]` names.

use serde_json::{Map, Value, json};

use super::{Facts, Flight, NANOS_PER_MS, Observed, short_revision};
use crate::bundle::Bundle;
use crate::dates::rfc3339_millis;
use crate::decision::{Decision, OriginFailure};

impl Facts<'_> {
    /// One PostHog event: anonymous (`$process_person_profile: false`), keyed by request id.
    pub(super) fn event(&self, bundle: &Bundle, flight: &Flight, name: &str, mut props: Map<String, Value>) -> Value {
        let d = &flight.decision;
        props.insert("$process_person_profile".into(), json!(false));
        props.insert("$lib".into(), json!("edgeguard"));
        match &self.client_ip {
            Some(ip) => {
                props.insert("$ip".into(), json!(ip));
            }
            None => {
                props.insert("$geoip_disable".into(), json!(true));
            }
        }
        props.insert("request_id".into(), json!(d.request_id));
        props.insert("app".into(), json!(bundle.app.name));
        props.insert("environment".into(), json!(bundle.app.environment));
        props.insert("revision".into(), json!(short_revision(bundle)));
        props.insert("method".into(), json!(flight.method));
        props.insert("host".into(), json!(d.host));
        props.insert("path".into(), json!(self.path));
        props.insert("route".into(), json!(self.route));
        json!({
            "event": name,
            "distinct_id": d.request_id,
            "timestamp": rfc3339_millis(flight.arrived / NANOS_PER_MS),
            "properties": props,
        })
    }
}

pub(super) fn refusal_props(d: &Decision, facts: &Facts) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert("reason".into(), json!(facts.reason));
    props.insert("status".into(), json!(d.status));
    props.insert("detail".into(), json!(d.detail));
    if let Some((name, remaining)) = facts.limit {
        props.insert("limit".into(), json!(name));
        props.insert("remaining".into(), json!(remaining));
    }
    props
}

/// The `edgeguard_origin_failure` event's own properties, when an origin failed.
pub(super) fn origin_failure_props(facts: &Facts, seen: &Observed) -> Option<Map<String, Value>> {
    let cause = match seen.origin_error {
        Some(OriginFailure::Timeout) => "timeout",
        Some(OriginFailure::Unreachable) => "unreachable",
        None if facts.action == "forward" && seen.status >= 500 => "status",
        None if seen.failover.is_some() => "failover",
        None => return None,
    };
    let mut props = Map::new();
    props.insert("cause".into(), json!(cause));
    props.insert("status".into(), json!(seen.status));
    props.insert("origin".into(), json!(facts.origin_name));
    props.insert("origin_ms".into(), json!(seen.origin_ms));
    if let Some(f) = &facts.failover {
        props.insert("failover".into(), json!(f));
    }
    Some(props)
}
