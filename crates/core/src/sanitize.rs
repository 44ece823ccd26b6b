//! Stage 1: refuse malformed requests and put the target into the one canonical form that
//! both the route matcher and the origin see.
//!
//! Path normalization: percent-encoded unreserved characters are decoded, other escapes are
//! upper-cased, raw non-ASCII is percent-encoded (as a browser would), empty and `.` segments
//! are dropped and `..` is resolved. Encoded `/`, `\`, NUL, invalid escapes, raw control bytes
//! and `..` above the root are refused: they are the classic ways to make an edge and an
//! origin disagree about which resource a path names.

use crate::bundle::SanitizeLimits;
pub use crate::request::is_tchar;
use crate::request::RequestFacts;

/// Why a request was refused in this stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(&'static str),
    UriTooLong,
    HeadersTooLarge,
}

/// A target in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// `Some(true)` for `https://…`, `Some(false)` for `http://…`, `None` for origin-form.
    pub https: Option<bool>,
    /// Authority from an absolute target (`host[:port]`).
    pub authority: Option<&'a str>,
    /// Normalized path, always starting with `/`.
    pub path: String,
    /// Raw query without the `?`, if any.
    pub query: Option<&'a str>,
}

impl Target<'_> {
    /// Path segments for the matcher (no empty segments).
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// Path and query as forwarded to the origin.
    pub fn path_and_query(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}

/// Header count and size, method token and header bytes.
pub fn check_request(req: &RequestFacts, limits: &SanitizeLimits) -> Result<(), Refusal> {
    if req.url.len() > limits.max_url_bytes as usize {
        return Err(Refusal::UriTooLong);
    }
    if req.method.is_empty() || !req.method.bytes().all(is_tchar) {
        return Err(Refusal::BadRequest("the method is not a valid HTTP token"));
    }
    if req.headers.len() > limits.max_headers as usize {
        return Err(Refusal::HeadersTooLarge);
    }
    let mut total: usize = 0;
    for (name, value) in req.headers {
        total = total.saturating_add(name.len()).saturating_add(value.len()).saturating_add(4);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(Refusal::BadRequest("a header name is not a valid HTTP token"));
        }
        if crate::scan::any_below_or_in(value.as_bytes(), 0, b"\r\n\0") {
            return Err(Refusal::BadRequest("a header value contains CR, LF or NUL"));
        }
    }
    if total > limits.max_header_bytes as usize {
        return Err(Refusal::HeadersTooLarge);
    }
    check_framing(req)
}

/// Headers whose repetition or combination lets two parsers read one request differently
/// (RFC 9112 §3.2, §6.1, §6.3): more than one Host, Content-Length values that disagree, and
/// Content-Length together with Transfer-Encoding (the body length the edge checks against
/// `max_body` would not be the one the origin reads).
fn check_framing(req: &RequestFacts) -> Result<(), Refusal> {
    let mut hosts = 0usize;
    let mut length: Option<&str> = None;
    let mut chunked = false;
    for (name, value) in req.headers {
        if name.eq_ignore_ascii_case("host") {
            hosts = hosts.saturating_add(1);
            if hosts > 1 {
                return Err(Refusal::BadRequest("the request has more than one Host header"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // `5, 5` (a repeated header joined by a runtime) is one length; `5, 6` is not.
            for v in value.split(',').map(str::trim) {
                match length {
                    Some(seen) if seen != v => {
                        return Err(Refusal::BadRequest("the request has Content-Length headers that disagree"));
                    }
                    _ => length = Some(v),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && length.is_some() {
        return Err(Refusal::BadRequest("the request has both Content-Length and Transfer-Encoding"));
    }
    Ok(())
}

/// Split and normalize a request target.
pub fn normalize_target(url: &str) -> Result<Target<'_>, Refusal> {
    let (https, authority, rest) = if let Some(rest) = strip_scheme(url, "https://") {
        let (auth, rest) = split_authority(rest);
        (Some(true), Some(auth), rest)
    } else if let Some(rest) = strip_scheme(url, "http://") {
        let (auth, rest) = split_authority(rest);
        (Some(false), Some(auth), rest)
    } else if url.starts_with('/') {
        (None, None, url)
    } else {
        return Err(Refusal::BadRequest("the request target is neither an absolute URL nor a path"));
    };
    if authority.is_some_and(str::is_empty) {
        return Err(Refusal::BadRequest("the request target has an empty host"));
    }
    if rest.contains('#') {
        return Err(Refusal::BadRequest("the request target contains a fragment"));
    }
    let (raw_path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if let Some(q) = query
        && q.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(Refusal::BadRequest("the query contains control characters or spaces"));
        }
    let raw_path = if raw_path.is_empty() { "/" } else { raw_path };
    let path = normalize_path(raw_path)?;
    Ok(Target { https, authority, path, query })
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme).then(|| url.get(scheme.len()..)).flatten()
}

fn split_authority(rest: &str) -> (&str, &str) {
    match rest.find(['/', '?', '#']) {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0')));
    out.push(char::from(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0')));
}

/// Canonical form of a path (see the module docs). Input must start with `/`.
pub fn normalize_path(raw: &str) -> Result<String, Refusal> {
    // Pass 1: canonical escapes, segment by segment.
    let bytes = raw.as_bytes();
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut i = 0usize;
    let finish = |current: &mut String, segments: &mut Vec<String>| -> Result<bool, Refusal> {
        let seg = core::mem::take(current);
        match seg.as_str() {
            "" | "." => Ok(true),
            ".." => {
                if segments.pop().is_none() {
                    return Err(Refusal::BadRequest("the path climbs above the root with `..`"));
                }
                Ok(true)
            }
            _ => {
                segments.push(seg);
                Ok(false)
            }
        }
    };
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' => {
                finish(&mut current, &mut segments)?;
            }
            b'\\' => return Err(Refusal::BadRequest("the path contains a backslash")),
            b'%' => {
                let hi = bytes.get(i.saturating_add(1)).copied().and_then(hex_value);
                let lo = bytes.get(i.saturating_add(2)).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(Refusal::BadRequest("the path has an invalid percent-encoding"));
                };
                let decoded = (hi << 4) | lo;
                match decoded {
                    b'/' => return Err(Refusal::BadRequest("the path contains an encoded `/`")),
                    b'\\' => return Err(Refusal::BadRequest("the path contains an encoded backslash")),
                    0 => return Err(Refusal::BadRequest("the path contains an encoded NUL")),
                    d if is_unreserved(d) => current.push(char::from(d)),
                    d => push_escaped(&mut current, d),
                }
                i = i.saturating_add(2);
            }
            b if b <= b' ' || b == 0x7f => {
                return Err(Refusal::BadRequest("the path contains control characters or spaces"));
            }
            b if b >= 0x80 => push_escaped(&mut current, b),
            b => current.push(char::from(b)),
        }
        i = i.saturating_add(1);
    }
    // `/a/` and `/a/.` keep their trailing slash, as URL resolution does.
    let trailing_slash = if current.is_empty() { raw.ends_with('/') } else { finish(&mut current, &mut segments)? };
    let mut path = String::with_capacity(raw.len());
    for seg in &segments {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() || trailing_slash {
        path.push('/');
    }
    Ok(path)
}

/// Host without port or trailing dot, lowercased; `None` when it is not a valid host.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !after.is_empty() && !valid_port(after.strip_prefix(':')?) {
            return None;
        }
        inside.parse::<core::net::Ipv6Addr>().ok()?;
        return Some(format!("[{}]", inside.to_ascii_lowercase()));
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if valid_port(port) => h,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    // No empty label: `a..b`, `.a` and `a..` (one trailing dot is the root label) name no host,
    // and refusing them keeps normalization idempotent (found by the normalize_path fuzz target).
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.split('.').any(str::is_empty)
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    ok.then(|| host.to_ascii_lowercase())
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    fn norm(p: &str) -> Result<String, Refusal> {
        normalize_path(p)
    }

    #[test]
    fn canonical_paths() {
        assert_eq!(norm("/").as_deref(), Ok("/"));
        assert_eq!(norm("/api//admin").as_deref(), Ok("/api/admin"));
        assert_eq!(norm("/api/./admin/").as_deref(), Ok("/api/admin/"));
        assert_eq!(norm("/api/x/../admin").as_deref(), Ok("/api/admin"));
        assert_eq!(norm("/api/%61dmin").as_deref(), Ok("/api/admin"));
        assert_eq!(norm("/api/%2e%2e/admin").as_deref(), Ok("/admin"));
        assert_eq!(norm("/a/%3a").as_deref(), Ok("/a/%3A"));
        assert_eq!(norm("/caf\u{e9}").as_deref(), Ok("/caf%C3%A9"));
        assert_eq!(norm("/a/.").as_deref(), Ok("/a/"));
        assert_eq!(norm("/a;b").as_deref(), Ok("/a;b"));
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["/a%2fb", "/a%2Fb", "/a%5cb", "/a\\b", "/a%00", "/a%zz", "/a%4", "/..", "/a/../..", "/a b", "/a\tb"] {
            assert!(matches!(norm(bad), Err(Refusal::BadRequest(_))), "{bad} must be refused");
        }
    }

    #[test]
    fn targets() {
        let t = normalize_target("https://Example.com:8443/a/../b?x=1");
        assert_eq!(
            t,
            Ok(Target { https: Some(true), authority: Some("Example.com:8443"), path: "/b".into(), query: Some("x=1") })
        );
        assert!(normalize_target("example.com/a").is_err());
        assert!(normalize_target("http:///a").is_err());
        assert!(normalize_target("/a#frag").is_err());
        assert_eq!(normalize_target("http://h").map(|t| t.path), Ok("/".into()));
    }

    #[test]
    fn hosts() {
        assert_eq!(normalize_host("LawnQuote.Online.:443").as_deref(), Some("lawnquote.online"));
        assert_eq!(normalize_host("[::1]:8787").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("a b"), None);
        assert_eq!(normalize_host("host:port"), None);
        assert_eq!(normalize_host(""), None);
    }

    #[test]
    fn framing_that_two_parsers_could_read_differently_is_refused() {
        let limits = SanitizeLimits { max_url_bytes: 8192, max_header_bytes: 32768, max_headers: 100, strip_headers: Vec::new() };
        let check = |headers: &[(&str, &str)]| {
            check_request(&RequestFacts { method: "POST", url: "/", headers, peer_ip: None, cf: Default::default() }, &limits)
        };
        assert_eq!(check(&[("host", "a"), ("content-length", "5")]), Ok(()));
        assert_eq!(check(&[("content-length", "5"), ("Content-Length", "5")]), Ok(()));
        assert_eq!(check(&[("content-length", "5, 5")]), Ok(()));
        for bad in [
            &[("host", "a"), ("Host", "b")][..],
            &[("host", "a"), ("host", "a")][..],
            &[("content-length", "1"), ("content-length", "2000000")][..],
            &[("content-length", "1, 2")][..],
            &[("content-length", "1"), ("transfer-encoding", "chunked")][..],
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "0")][..],
        ] {
            assert!(matches!(check(bad), Err(Refusal::BadRequest(_))), "{bad:?}");
        }
    }

    /// Fuzz regression (normalize_path target, input `z..`): the result was `z.`, which
    /// normalized again to `z`.
    #[test]
    fn fuzz_host_with_empty_label_is_refused() {
        for bad in ["z..", "a..b", ".a", "..", ".", "a..:443"] {
            assert_eq!(normalize_host(bad), None, "{bad}");
        }
        assert_eq!(normalize_host("z.").as_deref(), Some("z"));
    }
}
