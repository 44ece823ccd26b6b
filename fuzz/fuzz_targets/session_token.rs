//! Session material (a Bearer token, a Supabase cookie) and JWKS text, arbitrary: never a
//! panic, never a verified session from anything but a token signed with the source's secret,
//! and never a key from the JWKS for an HS256 token.
#![no_main]

use edgeguard_core::RequestFacts;
use edgeguard_core::glob::Glob;
use edgeguard_core::sessions::{Ask, Resolved, Sessions, Source, alg, decode_material, material as extract, parse};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzzing-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    let (material, jwks) = text.split_once('\u{1}').unwrap_or((text, ""));
    let _ = decode_material(material).map(|t| parse(&t));
    let source = Source {
        name: "s".into(),
        cookie: Some(Glob::new("sb-*-auth-token")),
        bearer: true,
        secret: Some("SECRET".into()),
        jwks_url: Some("https://auth.test/jwks.json".into()),
        algorithms: alg::HS256 | alg::ES256 | alg::RS256,
        issuer: None,
        audience: vec![],
        leeway_secs: 30,
        jwks_ttl_secs: 600,
        claims: vec!["sub".into(), "a.b".into()],
        test_secret: None,
    };
    let sources = std::slice::from_ref(&source);
    let mut state = Sessions::new(1, 1);
    state.set_secret(0, SECRET);
    state.set_jwks(0, Some(jwks), 0);
    let cookie = format!("sb-x-auth-token={material}");
    let bearer = format!("Bearer {material}");
    for headers in [[("cookie", cookie.as_str())], [("authorization", bearer.as_str())]] {
        let req = RequestFacts { method: "GET", url: "/", headers: &headers, peer_ip: None, cf: edgeguard_core::request::CfFacts::NONE };
        let verified = match state.resolve(sources, 0, &req, 1) {
            Resolved::Ask(ask) => match *ask {
                // The host says no: nothing may verify.
                Ask::Signature(s) => {
                    assert_ne!(s.alg, "HS256", "a JWKS key offered for an HS256 token");
                    state.verified(s.id, false, sources, 1);
                    state.resolve(sources, 0, &req, 1)
                }
                Ask::Jwks { .. } => Resolved::Absent,
            },
            other => other,
        };
        if matches!(verified, Resolved::Verified(_)) {
            // Only a genuine HS256 token: the signature checks out under the secret. The token
            // is what the engine took from the header (a cookie header can carry several).
            let taken = extract(&source, &req).expect("verified material is present");
            let token = decode_material(&taken).expect("verified material decodes");
            let parsed = parse(&token).expect("verified token parses");
            assert!(edgeguard_core::sessions::hs256_valid(SECRET, &parsed), "verified without a valid HS256 signature");
        }
    }
});
