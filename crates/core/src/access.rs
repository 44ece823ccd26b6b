//! Stage 6: who may reach a route — IP lists, required headers and cookies, API keys, body size.

use core::net::IpAddr;
use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::bundle::{ApiKey, Bundle, Route};
use crate::decision::{Action, Decision, Reason};
use crate::request::RequestFacts;
use crate::sessions::{Requirement, Resolved};

/// A refusal from this stage: reason, status and a sentence for the problem body.
pub type Refusal = (Reason, u16, String);

/// The route's access rules in order. `key_gate` checks an API key (the engine's
/// [`crate::Engine`] charges failed attempts to the key's failure limit).
pub fn check(
    bundle: &Bundle,
    route: &Route,
    req: &RequestFacts,
    client_ip: Option<IpAddr>,
    session: Option<&Resolved>,
    key_gate: impl FnOnce(u16, &ApiKey) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    // Next.js runs a Server Action for a `Next-Action` POST to any page that renders it — a
    // blocked page's action through an allowed page too — so a policy can refuse them all but
    // where it allows them.
    if !route.server_actions && req.header("next-action").is_some() {
        return Err((Reason::Forbidden, 403, "this route does not take Next.js Server Actions (a `Next-Action` request)".into()));
    }
    if !route.ip_allow.is_empty() && !client_ip.is_some_and(|ip| route.ip_allow.iter().any(|c| c.contains(ip))) {
        return Err((Reason::Forbidden, 403, "the client address is not in this route's ip_allow list".into()));
    }
    if let Some(ip) = client_ip
        && route.ip_deny.iter().any(|c| c.contains(ip)) {
            return Err((Reason::Forbidden, 403, "the client address is in this route's ip_deny list".into()));
        }
    for name in &route.require_headers {
        if req.header(name).is_none_or(|v| v.trim().is_empty()) {
            return Err((Reason::MissingHeader, 400, format!("the request must carry the `{name}` header")));
        }
    }
    if let Some(glob) = &route.require_cookie
        && !req.cookies().any(|(name, value)| !value.is_empty() && glob.matches(name)) {
            return Err((
                Reason::Unauthorized,
                401,
                format!("a session cookie matching `{}` is required", glob.source()),
            ));
        }
    if let Some(rule) = &route.require_session {
        session_gate(bundle, rule, session)?;
    }
    if let Some((index, key)) = route.api_key.and_then(|k| bundle.api_keys.get(usize::from(k)).map(|key| (k, key))) {
        key_gate(index, key)?;
    }
    if let Some(max) = route.max_body {
        match req.content_length() {
            Err(_) => return Err((Reason::BadRequest, 400, "the Content-Length header is not a valid length".into())),
            Ok(Some(len)) if len > max => {
                return Err((Reason::PayloadTooLarge, 413, format!("the body is {len} bytes; this route accepts at most {max}")));
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                // Any method: a GET or DELETE with a chunked body reaches the origin as well.
                if req.header("transfer-encoding").is_some() {
                    return Err((
                        Reason::LengthRequired,
                        411,
                        "a body sent without Content-Length cannot be checked against this route's max_body".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `require_session`: 401 without a valid, unexpired session from the source, 403 when its
/// claims are not the ones the route asks for, 503 when it cannot be verified now. The detail
/// says which, and never quotes the token or a claim's value.
fn session_gate(bundle: &Bundle, rule: &Requirement, session: Option<&Resolved>) -> Result<(), Refusal> {
    let source = bundle.sessions.get(usize::from(rule.source));
    let name = source.map_or("", |s| s.name.as_str());
    let session = match session {
        Some(Resolved::Verified(s)) => s,
        Some(Resolved::Invalid(why)) => return Err((Reason::SessionInvalid, 401, format!("{} (session source `{name}`)", why.sentence()))),
        Some(Resolved::Expired) => return Err((Reason::SessionExpired, 401, format!("the `{name}` session has expired; sign in again"))),
        Some(Resolved::Unavailable | Resolved::Ask(_)) => {
            return Err((Reason::SessionUnavailable, 503, format!("the `{name}` session cannot be verified now (its key set or secret is unavailable); retry later")));
        }
        Some(Resolved::Absent) | None => return Err((Reason::SessionMissing, 401, format!("this route requires a signed-in `{name}` session"))),
    };
    for claim in &rule.claims {
        let values = session.claim(claim.claim);
        if !values.iter().any(|v| claim.any_of.contains(v)) {
            let path = source.and_then(|s| s.claims.get(usize::from(claim.claim))).map_or("", String::as_str);
            return Err((Reason::SessionClaims, 403, format!("the session's `{path}` claim is not one this route accepts")));
        }
    }
    Ok(())
}

/// A body that came without a length (HTTP/2 and HTTP/3 need none) passed the route's
/// `max_body` as the shell streamed it: 413. `sent`: part of it had already gone to the origin,
/// which sees an aborted upload.
pub fn body_too_large(d: &mut Decision, max: u64, sent: bool) {
    d.action = Action::Reject;
    d.status = Some(413);
    d.reason = Reason::PayloadTooLarge;
    d.origin = None;
    d.detail = Cow::Owned(if sent {
        format!("the body passed this route's max_body of {max} bytes while it was sent; the origin got an aborted upload")
    } else {
        format!("the body passed this route's max_body of {max} bytes before anything was sent")
    });
}

/// SHA-256 of the presented key compared with every accepted hash in constant time.
pub(crate) fn api_key_valid(key: &ApiKey, req: &RequestFacts) -> bool {
    let Some(presented) = req.header(&key.header) else { return false };
    let presented = presented.trim();
    if presented.is_empty() {
        return false;
    }
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut any = 0u8;
    for accepted in &key.sha256 {
        let diff = accepted.iter().zip(digest.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        any |= u8::from(diff == 0);
    }
    any == 1
}
