//! Stage 8: which origin a forwarded request goes to — route pin, sticky lane, canary draw.

use crate::bundle::{Bundle, Route};
use crate::request::RequestFacts;

/// The chosen origin and whether the sticky lane cookie must be (re)issued.
pub fn choose(bundle: &Bundle, route: &Route, req: &RequestFacts, lane_draw: u32) -> (Option<u16>, bool) {
    if bundle.origins.is_empty() {
        return (None, false);
    }
    if let Some(pinned) = route.origin {
        return (Some(pinned), false);
    }
    let deploy = &bundle.deploy;
    let Some(canary) = &deploy.canary else { return (Some(deploy.active), false) };
    if canary.basis_points == 0 {
        return (Some(deploy.active), false);
    }
    // A client keeps the lane its cookie names, as long as that lane still exists.
    if let Some(lane) = req.cookie(&deploy.sticky_cookie) {
        for candidate in [deploy.active, canary.origin] {
            if bundle.origins.get(usize::from(candidate)).is_some_and(|o| o.name == lane) {
                return (Some(candidate), false);
            }
        }
    }
    let chosen = if lane_draw % 10_000 < canary.basis_points { canary.origin } else { deploy.active };
    (Some(chosen), true)
}

/// `Set-Cookie` value pinning the client to its lane.
pub fn lane_cookie(bundle: &Bundle, origin: u16) -> Option<String> {
    let name = &bundle.origins.get(usize::from(origin))?.name;
    Some(format!(
        "{}={}; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax",
        bundle.deploy.sticky_cookie, name
    ))
}
