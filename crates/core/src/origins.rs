//! Stage 8: which origin a forwarded request goes to — route pin, sticky lane, canary draw.

use crate::bundle::{Bundle, Route};
pub use crate::vocab::{Lane, Overrides};
use crate::request::RequestFacts;


/// The chosen origin and whether the sticky lane cookie must be (re)issued.
///
/// A route pin wins; then, when a canary runs, the lane the client's cookie names (if that
/// lane is still active or canary); then a fresh draw. Overrides replace the active origin
/// and the canary share, so a rollback is one variable change.
pub fn choose(bundle: &Bundle, overrides: &Overrides, unhealthy: u64, route: &Route, req: &RequestFacts, lane_draw: u32) -> (Option<u16>, bool, Lane) {
    if bundle.origins.is_empty() {
        return (None, false, Lane::Active);
    }
    if let Some(pinned) = route.origin {
        return (Some(pinned), false, Lane::Pinned);
    }
    let deploy = &bundle.deploy;
    let healthy = |o: u16| unhealthy & (1u64 << (u32::from(o) % 64)) == 0;
    let mut active = overrides.active.unwrap_or(deploy.active);
    let mut plain = Lane::Active;
    // Active traffic leaves a failing origin when another one is healthy.
    if !healthy(active) {
        let count = u16::try_from(bundle.origins.len()).unwrap_or(0);
        if let Some(other) = (0..count).find(|o| *o != active && healthy(*o)) {
            active = other;
            plain = Lane::HealthReroute;
        }
    }
    let Some(canary) = &deploy.canary else { return (Some(active), false, plain) };
    let share = overrides.canary_basis_points.unwrap_or(canary.basis_points).min(10_000);
    // A canary whose probe failed gets no users, sticky ones included.
    if !healthy(canary.origin) && share > 0 && canary.origin != active {
        return (Some(active), false, Lane::HealthReroute);
    }
    if share == 0 || canary.origin == active {
        return (Some(active), false, plain);
    }
    if let Some(lane) = req.cookie(&deploy.sticky_cookie) {
        for candidate in [active, canary.origin] {
            if bundle.origins.get(usize::from(candidate)).is_some_and(|o| o.name == lane) {
                return (Some(candidate), false, Lane::Sticky);
            }
        }
    }
    if lane_draw % 10_000 < share { (Some(canary.origin), true, Lane::CanaryDraw) } else { (Some(active), true, Lane::ActiveDraw) }
}

/// `Set-Cookie` value pinning the client to its lane.
pub fn lane_cookie(bundle: &Bundle, origin: u16) -> Option<String> {
    let name = &bundle.origins.get(usize::from(origin))?.name;
    Some(format!(
        "{}={}; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax",
        bundle.deploy.sticky_cookie, name
    ))
}

#[cfg(test)]
mod lane_tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::Lane;

    #[test]
    fn lane_names_are_serdes() {
        for lane in [Lane::Pinned, Lane::Active, Lane::Sticky, Lane::CanaryDraw, Lane::ActiveDraw, Lane::HealthReroute] {
            assert_eq!(serde_json::to_string(&lane).unwrap_or_default(), format!("\"{}\"", lane.as_str()));
        }
    }
}
