//! Stage 4: plain http goes to https on the same host first, then to the canonical host.

use crate::bundle::Bundle;
use crate::decision::Reason;

/// `(reason, status, location)` when the request must be redirected.
pub fn redirect(bundle: &Bundle, https: bool, host: &str, method: &str, path_and_query: &str) -> Option<(Reason, u16, String)> {
    // 301 lets GET/HEAD be cached by browsers; 308 keeps the method and body of the others.
    let status = if matches!(method, "GET" | "HEAD") { 301 } else { 308 };
    if !https && bundle.https.redirect {
        return Some((Reason::HttpsRedirect, status, format!("https://{host}{path_and_query}")));
    }
    let canonical = bundle.app.canonical_host.as_deref()?;
    if host == canonical {
        return None;
    }
    let scheme = if https { "https" } else { "http" };
    Some((Reason::CanonicalHost, status, format!("{scheme}://{canonical}{path_and_query}")))
}
