//! The Analytics Engine data point of a request (`writeDataPoint`).

use super::{DataPoint, Facts, Flight, Observed, truncate};
use crate::bundle::Bundle;
use crate::decision::{Action, Reason, RuleRef};
use crate::vocab::Lane;

impl Facts<'_> {
    pub(super) fn point(&self, bundle: &Bundle, flight: &Flight, seen: &Observed) -> DataPoint {
        let d = &flight.decision;
        let route = self.route.unwrap_or(if d.rule == RuleRef::Defaults { "(defaults)" } else { "(none)" });
        DataPoint {
            indexes: vec![truncate(route, 96).to_owned()],
            blobs: vec![
                route.to_owned(),
                self.action.to_owned(),
                self.reason.to_owned(),
                flight.method.clone(),
                d.host.clone(),
                self.path.to_owned(),
                self.origin_name.unwrap_or_default().to_owned(),
                d.lane.filter(|_| d.action == Action::Forward).map(Lane::as_str).unwrap_or_default().to_owned(),
                self.limit.map(|(name, _)| name).unwrap_or_default().to_owned(),
                self.client_ip.clone().unwrap_or_default(),
                d.shadowed.map(Reason::code).unwrap_or_default().to_owned(),
                bundle.app.name.clone(),
                bundle.app.environment.clone(),
            ],
            doubles: vec![
                i64::from(seen.status),
                i64::try_from(seen.edge_ms).unwrap_or(i64::MAX),
                seen.origin_ms.map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                self.limit.map_or(-1, |(_, r)| i64::try_from(r).unwrap_or(i64::MAX)),
            ],
        }
    }
}
