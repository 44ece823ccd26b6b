//! Shared by the fuzz targets: the fixture policies compiled once, a small text format for
//! requests (so seed corpora are readable) and the invariants every decision must keep.
#![allow(dead_code)]

use std::sync::OnceLock;

use edgeguard_compiler::{Options, compile};
use edgeguard_core::explain::explain;
use edgeguard_core::response::{self, Sent};
use edgeguard_core::sanitize::{normalize_path, normalize_target};
use edgeguard_core::{Action, Decision, Draw, Engine, Limiter, RequestFacts};

/// The fixture policies, in selector order (`0` quotekit, `1` minimal, `2` helmet, `3` quotekit
/// staging).
pub const POLICIES: [(&str, &str, Option<&str>); 4] = [
    ("quotekit", include_str!("../../fixtures/quotekit.toml"), None),
    ("minimal", include_str!("../../fixtures/minimal.toml"), None),
    ("helmet", include_str!("../../fixtures/helmet.toml"), None),
    ("quotekit-staging", include_str!("../../fixtures/quotekit.toml"), Some("staging")),
];

/// Bundle bytes of every fixture policy, compiled once per process.
pub fn bundles() -> &'static [Vec<u8>] {
    static BUNDLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        POLICIES
            .iter()
            .map(|(name, source, env)| {
                let out = compile(source, &Options { env: env.map(str::to_owned), ..Options::default() });
                let bundle = out.bundle.unwrap_or_else(|| panic!("fixture {name} does not compile: {:?}", out.diagnostics));
                bundle.to_bytes().unwrap_or_else(|e| panic!("fixture {name} does not encode: {e}"))
            })
            .collect()
    })
}

/// An engine per fixture policy, loaded once per process.
pub fn engines() -> &'static [Engine] {
    static ENGINES: OnceLock<Vec<Engine>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        bundles().iter().map(|b| Engine::load(b).unwrap_or_else(|e| panic!("fixture bundle does not load: {e}"))).collect()
    })
}

/// One request of the text format:
///
/// ```text
/// METHOD TARGET
/// name: value
/// @peer: 192.0.2.1
/// ```
///
/// The method is everything before the first space, the target everything after it. Header
/// lines split at the first `:`, and one space after it is dropped. `@peer` sets the
/// connection's address. Requests in one input are separated by an empty line.
pub struct TextRequest<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub peer: Option<core::net::IpAddr>,
    /// `request.cf` in the worker's wire form, fields separated by `|` (an `@cf:` line).
    pub cf: &'a str,
}

pub fn parse_requests(text: &str, max: usize) -> Vec<TextRequest<'_>> {
    text.split("\n\n").take(max).map(parse_request).collect()
}

fn parse_request(block: &str) -> TextRequest<'_> {
    let mut lines = block.split('\n');
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let mut headers = Vec::new();
    let mut peer = None;
    let mut cf = "";
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        if name == "@peer" {
            peer = value.parse().ok();
        } else if name == "@cf" {
            cf = value;
        } else {
            headers.push((name, value));
        }
    }
    TextRequest { method, target, headers, peer, cf }
}

/// Invariants every decision keeps, whatever the request.
pub fn check_decision(engine: &Engine, d: &Decision, strict: bool) {
    let e = explain(engine, d);
    let json = serde_json_string(&e);
    assert!(!json.is_empty());
    if let Some(body) = d.problem_json() {
        assert!(body.starts_with('{'), "problem body is not a JSON object: {body}");
    }
    let _ = engine.forward_headers(d);
    // The response phase (explain above runs it for a 200 HTML page): here for a HEAD answer
    // with the decision's own status and no content type.
    let sent = Sent { status: d.status.unwrap_or(200), from_origin: d.action == Action::Forward, content_type: "", content_encoding: "", head: true };
    let _ = response::ops(engine.bundle(), d, &sent);
    if !strict {
        // A corrupted bundle may hold any status or header; only the absence of panics counts.
        return;
    }
    match d.action {
        Action::Forward => {
            assert!(d.status.is_none());
            let path = d.path_and_query.split('?').next().unwrap_or("");
            check_canonical_path(path);
        }
        Action::Reject => {
            let status = d.status.unwrap_or(0);
            assert!((400..=599).contains(&status), "refusal with status {status}");
            assert!(d.origin.is_none());
        }
        Action::Redirect => {
            assert!(matches!(d.status, Some(301 | 302 | 307 | 308)), "redirect with {:?}", d.status);
            assert!(d.location.is_some());
        }
        Action::Respond => {}
    }
}

fn serde_json_string(e: &edgeguard_core::Explanation) -> String {
    // The CLI prints exactly this; it must never fail.
    serde_json::to_string(e).unwrap_or_else(|err| panic!("explanation does not serialize: {err}"))
}

/// What the origin receives must already be canonical: normalizing it again changes nothing,
/// and it holds none of the forms the sanitize stage exists to remove.
pub fn check_canonical_path(path: &str) {
    assert!(path.starts_with('/'), "forwarded path {path:?} is not absolute");
    assert_eq!(normalize_path(path).as_deref(), Ok(path), "forwarded path {path:?} is not a fixed point");
    assert!(path.is_ascii(), "forwarded path {path:?} is not ASCII");
    assert!(!path.contains(['?', '#']), "forwarded path {path:?} holds a raw ? or #");
    assert!(!path.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\'), "forwarded path {path:?} has raw unsafe bytes");
    let body = path.strip_suffix('/').unwrap_or(path);
    for seg in body.split('/').skip(1) {
        assert!(!matches!(seg, "" | "." | ".."), "forwarded path {path:?} has segment {seg:?}");
    }
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).unwrap_or(b"");
            assert!(hex.len() == 2 && hex.iter().all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)), "bad escape in {path:?}");
            let v = u8::from_str_radix(core::str::from_utf8(hex).unwrap_or("zz"), 16).unwrap_or(0);
            assert!(!(v.is_ascii_alphanumeric() || b"-._~".contains(&v)), "unreserved byte left encoded in {path:?}");
            assert!(v != b'/' && v != b'\\' && v != 0, "encoded / \\ or NUL in {path:?}");
        }
    }
    if let Ok(t) = normalize_target(path) {
        assert_eq!(t.path, path);
    }
}

/// Run requests in order against one fresh limiter (one second apart), checking each decision,
/// and check that deciding is a pure function (the same first answer on a second fresh limiter).
pub fn run_requests(engine: &Engine, requests: &[TextRequest<'_>], strict: bool) {
    let mut limiter: Limiter = engine.new_limiter(7);
    let mut first: Option<Decision> = None;
    for (i, r) in requests.iter().enumerate() {
        let cf = r.cf.replace('|', "\n");
        let facts = RequestFacts { method: r.method, url: r.target, headers: &r.headers, peer_ip: r.peer, cf: edgeguard_core::CfFacts::from_wire(&cf) };
        let now = (i as u64).saturating_mul(1_000_000_000);
        let draw = Draw { request_id: 0x1234_5678, lane: (i as u32).wrapping_mul(2_654_435_761) };
        let d = engine.decide_standalone(&facts, &mut limiter, now, draw);
        check_decision(engine, &d, strict);
        if i == 0 {
            first = Some(d);
        }
    }
    if let (Some(first), Some(r)) = (first, requests.first()) {
        let mut fresh = engine.new_limiter(7);
        let cf = r.cf.replace('|', "\n");
        let facts = RequestFacts { method: r.method, url: r.target, headers: &r.headers, peer_ip: r.peer, cf: edgeguard_core::CfFacts::from_wire(&cf) };
        let again = engine.decide_standalone(&facts, &mut fresh, 0, Draw { request_id: 0x1234_5678, lane: 0 });
        assert_eq!(first.action, again.action);
        assert_eq!(first.status, again.status);
        assert_eq!(first.reason, again.reason);
        assert_eq!(first.path_and_query, again.path_and_query);
    }
}

/// A few requests every policy sees in the compiler targets.
pub const PROBES: &str = "GET https://lawnquote.online/\ncf-connecting-ip: 198.51.100.1\n\n\
POST https://lawnquote.online/api/quotes?x=1\ncontent-length: 2\n\n\
GET http://example.com/a/../b/%61\nhost: example.com\n\n\
DELETE /api/admin/metrics\nhost: lawnquote.online\nx-api-key: k";

/// What the compiler returned for `source`: errors and no bundle, or a bundle that encodes,
/// decodes to itself, loads and decides.
pub fn check_output(source: &[u8], out: &edgeguard_compiler::Output) {
    for d in &out.diagnostics {
        assert!(d.span.start <= d.span.end, "diagnostic span {:?} is reversed", d.span);
        assert!(d.span.start <= source.len().saturating_add(1), "diagnostic span {:?} beyond {} bytes", d.span, source.len());
    }
    match &out.bundle {
        None => assert!(out.has_errors(), "no bundle and no error"),
        Some(bundle) => {
            assert!(!out.has_errors());
            let bytes = bundle.to_bytes().unwrap_or_else(|e| panic!("a compiled bundle does not encode: {e}"));
            let decoded = edgeguard_core::Bundle::from_bytes(&bytes).unwrap_or_else(|e| panic!("a compiled bundle does not load: {e}"));
            assert!(decoded == *bundle, "the bundle does not round-trip");
            let engine = Engine::new(decoded).unwrap_or_else(|e| panic!("a compiled bundle is refused by the engine: {e}"));
            run_requests(&engine, &parse_requests(PROBES, 4), true);
        }
    }
}
