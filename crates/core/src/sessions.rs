//! Stage 6, identity: verified sessions (`[sessions.<name>]`, a route's `require_session`, limits
//! keyed `session:<claim>`).
//!
//! A source reads a JWT from an `Authorization: Bearer` header or a cookie — Supabase's
//! `sb-<ref>-auth-token`, chunked into `.0`, `.1`… and wrapped (`base64-…`, JSON) as supabase-js
//! writes it — and verifies it. Nothing in an unverified token is trusted: not its claims, not
//! its expiry, not the key id it names.
//!
//! Where the signature is checked is a size and speed choice (docs/sessions.md has the numbers):
//! HS256 is HMAC-SHA-256, a few KiB of wasm on the SHA-256 the engine already has, so it is
//! checked here; ES256 and RS256 would add ~17 and ~26 KiB gzip of P-256 and RSA code to the
//! upload and run slower in wasm than the runtime's own WebCrypto, so the engine selects the
//! key from the source's JWKS and asks its host to check the signature ([`Ask`]) — the worker's
//! shell with `crypto.subtle.verify`, as it asks the global limiter.
//!
//! What was verified is remembered per isolate, keyed by the exact token text the request
//! carried (cookie chunks joined), until the token expires: a signed-in client pays for one
//! verification per token per isolate, and every later request only a lookup. Only the claims
//! the policy reads are kept, and none is ever written to a log line.

use core::hash::BuildHasher;
use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::glob::Glob;
use crate::request::RequestFacts;

/// Algorithm bits of [`Source::algorithms`]. `none` has no bit: it is never accepted.
pub mod alg {
    pub const HS256: u8 = 1;
    pub const ES256: u8 = 2;
    pub const RS256: u8 = 4;

    /// The JOSE name of one bit.
    pub fn name(bit: u8) -> &'static str {
        match bit {
            HS256 => "HS256",
            ES256 => "ES256",
            RS256 => "RS256",
            _ => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<u8> {
        match name {
            "HS256" => Some(HS256),
            "ES256" => Some(ES256),
            "RS256" => Some(RS256),
            _ => None,
        }
    }
}

/// A `[sessions.<name>]` source, as compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub name: String,
    /// Cookie holding the session (chunks `<name>.0`, `<name>.1`… are joined).
    pub cookie: Option<Glob>,
    /// Read `Authorization: Bearer <token>` (before the cookie).
    pub bearer: bool,
    /// The worker secret (env var) holding the HS256 key.
    pub secret: Option<String>,
    /// JWKS for ES256/RS256, fetched and cached by the host.
    pub jwks_url: Option<String>,
    /// [`alg`] bits a token may be signed with.
    pub algorithms: u8,
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty = `aud` not checked.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// How long a fetched JWKS is used before it is fetched again.
    pub jwks_ttl_secs: u64,
    /// Claim paths (`sub`, `app_metadata.role`) the policy reads: the only claims kept.
    pub claims: Vec<String>,
    /// HS256 key for test tokens: accepted by `explain`, `test` and the playground only
    /// ([`Sessions::accept_test_tokens`]), never by the worker.
    pub test_secret: Option<String>,
}

/// A route's `require_session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub source: u16,
    /// Each claim (index into the source's [`Source::claims`]) must have one of these values.
    pub claims: Vec<ClaimRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRule {
    pub claim: u16,
    pub any_of: Vec<String>,
}

/// Longest session material read (joined cookie chunks or a Bearer token): larger is not a
/// token this edge verifies.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Most bytes of remembered tokens per isolate; beyond it expired entries go, then the oldest.
pub const MAX_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// A JWKS is fetched again at most this often when a token names a key it lacks (a rotation),
/// and retried no sooner after a failed fetch.
pub const JWKS_RETRY_SECS: u64 = 30;

/// A token whose signature failed is remembered this long (or until its `exp`, if sooner).
pub const INVALID_MEMORY_SECS: u64 = 300;

/// What a verified token says, reduced to what the policy reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `exp`, seconds since the epoch.
    pub expires: u64,
    /// `nbf`, when the token had one.
    pub not_before: Option<u64>,
    /// Values of the source's [`Source::claims`], by index: a string claim is one value, an
    /// array its string/number/bool items, a number or bool its JSON text; absent = empty.
    pub claims: Vec<Vec<String>>,
}

impl Session {
    pub fn claim(&self, index: u16) -> &[String] {
        self.claims.get(usize::from(index)).map_or(&[], Vec::as_slice)
    }
}

/// Why a token is not a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    NoExpiry,
}

impl Invalid {
    pub fn sentence(self) -> &'static str {
        match self {
            Invalid::Malformed => "the session token is not a well-formed JWT",
            Invalid::Algorithm => "the session token is signed with an algorithm this source does not accept",
            Invalid::UnknownKey => "the session token names a key that is not in the source's key set",
            Invalid::Signature => "the session token's signature does not verify",
            Invalid::Issuer => "the session token was issued by another issuer",
            Invalid::Audience => "the session token is for another audience",
            Invalid::NoExpiry => "the session token has no expiry (`exp`)",
        }
    }
}

/// A request's session, as far as the engine could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No token for this source in the request.
    Absent,
    Verified(std::sync::Arc<Session>),
    Invalid(Invalid),
    /// Verified, but past `exp` (or before `nbf`) with the leeway.
    Expired,
    /// The key set could not be fetched: nothing can be verified.
    Unavailable,
    /// The host must act first ([`Ask`]); then the request is decided again.
    Ask(Box<Ask>),
}

/// What the engine needs from its host before it can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Fetch the source's JWKS and hand it to [`Sessions::set_jwks`].
    Jwks { source: u16, url: String },
    /// Check a signature with WebCrypto and hand the answer to [`Sessions::verified`].
    Signature(SignatureAsk),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureAsk {
    /// Names this ask in [`Sessions::verified`].
    pub id: u32,
    pub source: u16,
    /// `ES256` or `RS256`.
    pub alg: &'static str,
    /// The selected JWK, public members only, ready for `crypto.subtle.importKey("jwk", …)`.
    pub jwk: String,
    /// Its `kid` (the host caches imported keys by it).
    pub kid: String,
    /// `<header>.<payload>` as received: the signed bytes.
    pub input: String,
    /// The signature, base64url as received.
    pub signature: String,
}

/// A public key from a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    kid: Option<String>,
    alg: u8,
    /// The JWK's public members as JSON.
    jwk: String,
}

#[derive(Debug, Default)]
struct KeySet {
    keys: Vec<Key>,
    /// When the set was last fetched (or failed to be), seconds.
    fetched: Option<u64>,
    failed: bool,
}

struct Entry {
    outcome: Outcome,
    /// Until when (seconds) the outcome holds.
    until: u64,
    /// Insertion order, for evicting the oldest.
    seq: u64,
}

#[derive(Clone)]
enum Outcome {
    Verified(std::sync::Arc<Session>),
    Invalid(Invalid),
}

/// A signature check handed to the host, waiting for its answer.
struct Pending {
    source: u16,
    material: Box<str>,
    token: Parsed,
}

/// The per-isolate verification state: keys, remembered tokens, asks in flight. Held by the
/// [`crate::Engine`] in a `Mutex` (uncontended: an isolate runs one request at a time): deciding
/// reads and remembers through `&Engine`.
pub struct Sessions {
    keys: Vec<KeySet>,
    /// HS256 keys by source, from the worker secret named in [`Source::secret`].
    secrets: Vec<Option<Vec<u8>>>,
    tokens: HashMap<Box<str>, Entry, foldhash::quality::FixedState>,
    bytes: usize,
    seq: u64,
    pending: HashMap<u32, Pending>,
    next_ask: u32,
    test_tokens: bool,
    /// Seconds added to the engine's clock for `exp`/`nbf` (`explain` and `test` decide at a
    /// limiter clock that starts at 0; the worker's clock is already the Unix time).
    clock_base: u64,
}

/// Most signature asks in flight; beyond it a token is answered as not verifiable now.
const MAX_PENDING: usize = 1_000;

impl Sessions {
    pub fn new(sources: usize, seed: u64) -> Sessions {
        Sessions {
            keys: (0..sources).map(|_| KeySet::default()).collect(),
            secrets: vec![None; sources],
            tokens: HashMap::with_hasher(foldhash::quality::FixedState::with_seed(seed)),
            bytes: 0,
            seq: 0,
            pending: HashMap::new(),
            next_ask: 0,
            test_tokens: false,
            clock_base: 0,
        }
    }

    /// The HS256 key of `source` (the value of its `secret` worker secret).
    pub fn set_secret(&mut self, source: u16, secret: &[u8]) {
        if let Some(slot) = self.secrets.get_mut(usize::from(source)) {
            *slot = (!secret.is_empty()).then(|| secret.to_vec());
        }
    }

    /// `explain`, `test`, the playground: accept HS256 tokens signed with a source's
    /// `test_secret`, and count `exp` from `clock_base` seconds.
    pub fn accept_test_tokens(&mut self, clock_base: u64) {
        self.test_tokens = true;
        self.clock_base = clock_base;
    }

    /// A fetched JWKS (`text`), or `None` when the fetch failed. Returns the number of usable
    /// keys; keys of other types, sizes or uses are skipped, never guessed at.
    pub fn set_jwks(&mut self, source: u16, text: Option<&str>, now_secs: u64) -> usize {
        let Some(set) = self.keys.get_mut(usize::from(source)) else { return 0 };
        set.fetched = Some(now_secs);
        match text.map(parse_jwks) {
            Some(Some(keys)) => {
                set.keys = keys;
                set.failed = false;
            }
            // A failed refresh keeps the keys it had: a JWKS outage must not log everyone out.
            _ => set.failed = set.keys.is_empty(),
        }
        set.keys.len()
    }

    /// The host's answer to [`Ask::Signature`] `id`: remembered, so deciding again finds it.
    pub fn verified(&mut self, id: u32, valid: bool, sources: &[Source], now_secs: u64) {
        let Some(p) = self.pending.remove(&id) else { return };
        let Some(source) = sources.get(usize::from(p.source)) else { return };
        let outcome = if valid { finish(source, &p.token) } else { Err(Invalid::Signature) };
        self.remember(p.material, outcome, now_secs);
    }

    /// The test clock's Unix time at engine time 0 ([`Sessions::accept_test_tokens`]).
    pub fn clock_base(&self) -> u64 {
        self.clock_base
    }

    /// Tokens remembered now (metrics, tests).
    pub fn remembered(&self) -> usize {
        self.tokens.len()
    }

    fn now(&self, now_secs: u64) -> u64 {
        now_secs.saturating_add(self.clock_base)
    }

    fn remember(&mut self, material: Box<str>, outcome: Result<Session, Invalid>, now_secs: u64) -> Outcome {
        let now = self.now(now_secs);
        let (outcome, until) = match outcome {
            Ok(s) => {
                let until = s.expires;
                (Outcome::Verified(std::sync::Arc::new(s)), until)
            }
            Err(why) => (Outcome::Invalid(why), now.saturating_add(INVALID_MEMORY_SECS)),
        };
        let size = material.len().saturating_add(64);
        if self.bytes.saturating_add(size) > MAX_CACHE_BYTES {
            self.evict(now);
        }
        self.seq = self.seq.wrapping_add(1);
        // A token remembered again (its invalid outcome lapsed, or two asks for it) replaces its
        // entry: its bytes are counted once.
        if self.tokens.insert(material, Entry { outcome: outcome.clone(), until, seq: self.seq }).is_none() {
            self.bytes = self.bytes.saturating_add(size);
        }
        outcome
    }

    /// Expired entries first; if that frees less than half, the older half too.
    fn evict(&mut self, now: u64) {
        self.tokens.retain(|_, e| e.until > now);
        if self.tokens_bytes() > MAX_CACHE_BYTES / 2 {
            let cut = self.seq.saturating_sub(u64::try_from(self.tokens.len() / 2).unwrap_or(0));
            self.tokens.retain(|_, e| e.seq > cut);
        }
        self.bytes = self.tokens_bytes();
    }

    fn tokens_bytes(&self) -> usize {
        self.tokens.keys().map(|k| k.len().saturating_add(64)).fold(0, usize::saturating_add)
    }

    /// The session `source` finds in `req` at `now_secs`.
    pub fn resolve(&mut self, sources: &[Source], index: u16, req: &RequestFacts, now_secs: u64) -> Resolved {
        let Some(source) = sources.get(usize::from(index)) else { return Resolved::Absent };
        let Some(material) = material(source, req) else { return Resolved::Absent };
        let now = self.now(now_secs);
        let remembered = self.tokens.get(material.as_ref()).filter(|e| e.until > now || matches!(e.outcome, Outcome::Verified(_)));
        let outcome = match remembered {
            Some(e) => e.outcome.clone(),
            None => match self.verify(source, index, &material, now_secs) {
                Ok(outcome) => outcome,
                Err(resolved) => return resolved,
            },
        };
        match outcome {
            Outcome::Invalid(why) => Resolved::Invalid(why),
            Outcome::Verified(s) => {
                let leeway = source.leeway_secs;
                let expired = now >= s.expires.saturating_add(leeway) || s.not_before.is_some_and(|nbf| now.saturating_add(leeway) < nbf);
                if expired { Resolved::Expired } else { Resolved::Verified(s) }
            }
        }
    }

    /// A token not seen yet: parse it, check what can be checked here, remember the outcome.
    fn verify(&mut self, source: &Source, index: u16, material: &str, now_secs: u64) -> Result<Outcome, Resolved> {
        let token = match decode_material(material).as_deref().map(parse) {
            Some(Ok(t)) => t,
            Some(Err(why)) => return Ok(self.remember(material.into(), Err(why), now_secs)),
            None => return Ok(self.remember(material.into(), Err(Invalid::Malformed), now_secs)),
        };
        let test_key = source.test_secret.as_deref().filter(|_| self.test_tokens && token.alg == alg::HS256);
        if token.alg & source.algorithms == 0 && test_key.is_none() {
            return Ok(self.remember(material.into(), Err(Invalid::Algorithm), now_secs));
        }
        if token.alg == alg::HS256 {
            let key = match test_key {
                Some(k) => Some(k.as_bytes()),
                None => self.secrets.get(usize::from(index)).and_then(Option::as_deref),
            };
            let Some(key) = key else { return Err(Resolved::Unavailable) };
            let outcome = if hs256_valid(key, &token) { finish(source, &token) } else { Err(Invalid::Signature) };
            return Ok(self.remember(material.into(), outcome, now_secs));
        }
        // ES256 / RS256: the key from the JWKS, the signature by the host.
        let Some(url) = source.jwks_url.as_deref() else { return Ok(self.remember(material.into(), Err(Invalid::Algorithm), now_secs)) };
        let Some(set) = self.keys.get(usize::from(index)) else { return Err(Resolved::Unavailable) };
        let now = now_secs;
        let stale = set.fetched.is_none_or(|t| now >= t.saturating_add(source.jwks_ttl_secs));
        let may_refetch = set.fetched.is_none_or(|t| now >= t.saturating_add(JWKS_RETRY_SECS));
        let key = select(&set.keys, token.alg, token.kid.as_deref()).cloned();
        match key {
            None if may_refetch || set.fetched.is_none() => Err(Resolved::Ask(Box::new(Ask::Jwks { source: index, url: url.to_owned() }))),
            None if set.failed => Err(Resolved::Unavailable),
            // Not remembered: after a key rotation the set is fetched again within
            // JWKS_RETRY_SECS, and this token may verify then.
            None => Ok(Outcome::Invalid(Invalid::UnknownKey)),
            Some(_) if stale && may_refetch => Err(Resolved::Ask(Box::new(Ask::Jwks { source: index, url: url.to_owned() }))),
            Some(key) => {
                if self.pending.len() >= MAX_PENDING {
                    return Err(Resolved::Unavailable);
                }
                self.next_ask = self.next_ask.wrapping_add(1);
                let id = self.next_ask;
                let ask = SignatureAsk {
                    id,
                    source: index,
                    alg: alg::name(token.alg),
                    jwk: key.jwk.clone(),
                    kid: key.kid.clone().unwrap_or_default(),
                    input: token.signing_input.clone(),
                    signature: token.signature_text.clone(),
                };
                self.pending.insert(id, Pending { source: index, material: material.into(), token });
                Err(Resolved::Ask(Box::new(Ask::Signature(ask))))
            }
        }
    }
}

/// The engine's session state, behind a `Mutex` so that `decide(&self)` can remember (and an
/// engine can be shared by threads, as tests do).
pub type Shared = std::sync::Mutex<Sessions>;

/// The session material `source` reads from `req`: the Bearer token, else the cookie's value
/// with its chunks joined. `None` when absent or larger than [`MAX_TOKEN_BYTES`].
pub fn material<'a>(source: &Source, req: &RequestFacts<'a>) -> Option<Cow<'a, str>> {
    if source.bearer
        && let Some(value) = req.header("authorization")
    {
        let value = value.trim();
        let scheme = value.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer "));
        if let Some(token) = scheme.and_then(|_| value.get(7..)).map(str::trim).filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES) {
            return Some(Cow::Borrowed(token));
        }
    }
    let glob = source.cookie.as_ref()?;
    let mut chunks: Vec<(u32, &str)> = Vec::new();
    let mut chunk_base: Option<&str> = None;
    for (name, value) in req.cookies() {
        if value.is_empty() {
            continue;
        }
        match chunk_of(name) {
            // Chunks of the first session cookie found; another project's are not joined in.
            Some((base, n)) if (glob.matches(base) || glob.matches(name)) && chunk_base.is_none_or(|b| b == base) => {
                chunk_base = Some(base);
                chunks.push((n, value));
            }
            Some(_) => {}
            None if glob.matches(name) => return (value.len() <= MAX_TOKEN_BYTES).then_some(Cow::Borrowed(value)),
            None => {}
        }
    }
    // Chunks 0, 1, 2… with none missing, in any order: anything else is not one session.
    let ordered: Option<Vec<&str>> = (0..chunks.len()).map(|i| chunks.iter().find(|(n, _)| usize::try_from(*n).ok() == Some(i)).map(|(_, v)| *v)).collect();
    let chunks = ordered.filter(|c| !c.is_empty())?;
    if let [only] = chunks.as_slice() {
        return (only.len() <= MAX_TOKEN_BYTES).then_some(Cow::Borrowed(only));
    }
    let joined = chunks.concat();
    (joined.len() <= MAX_TOKEN_BYTES).then_some(Cow::Owned(joined))
}

/// `name.N` → (`name`, N).
fn chunk_of(name: &str) -> Option<(&str, u32)> {
    let (base, n) = name.rsplit_once('.')?;
    if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, n.parse().ok()?))
}

/// The compact JWT inside session material: a token as is, or supabase-js's cookie value —
/// `base64-<base64url of the session JSON>`, the JSON itself (percent-encoded or not), or
/// the older `["<access token>", …]` array — whose `access_token` is the JWT.
pub fn decode_material(material: &str) -> Option<Cow<'_, str>> {
    if let Some(b64) = material.strip_prefix("base64-") {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.trim_end_matches('=')))
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        return from_json(&text).map(Cow::Owned);
    }
    match material.as_bytes().first()? {
        b'{' | b'[' | b'"' => from_json(material).map(Cow::Owned),
        b'%' => from_json(&percent_decode(material)?).map(Cow::Owned),
        _ => Some(Cow::Borrowed(material)),
    }
}

fn from_json(text: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Object(session) => session.get("access_token").and_then(serde_json::Value::as_str).map(str::to_owned),
        serde_json::Value::Array(items) => items.into_iter().next().and_then(|v| v.as_str().map(str::to_owned)),
        serde_json::Value::String(t) if t.starts_with("base64-") || t.starts_with('{') => decode_material(&t).map(Cow::into_owned),
        serde_json::Value::String(t) => Some(t),
        _ => None,
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = text.get(i.saturating_add(1)..i.saturating_add(3))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i = i.saturating_add(3);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    String::from_utf8(out).ok()
}

/// A compact JWS split and decoded, before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub alg: u8,
    pub kid: Option<String>,
    pub signing_input: String,
    pub signature: Vec<u8>,
    signature_text: String,
    /// The payload JSON (untrusted until the signature is checked).
    payload: Vec<u8>,
}

/// Split and decode a compact JWS. `alg: none`, unknown algorithms, `crit` extensions and any
/// encoding fault are refusals; nothing is trusted yet.
pub fn parse(token: &str) -> Result<Parsed, Invalid> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Invalid::Malformed);
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value = b64.decode(h).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).ok_or(Invalid::Malformed)?;
    let header = header.as_object().ok_or(Invalid::Malformed)?;
    // `crit` names extensions a verifier must understand (RFC 7515 §4.1.11): this one knows none.
    if header.contains_key("crit") {
        return Err(Invalid::Malformed);
    }
    let alg = header.get("alg").and_then(serde_json::Value::as_str).and_then(alg::from_name).ok_or(Invalid::Algorithm)?;
    let kid = match header.get("kid") {
        None => None,
        Some(serde_json::Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(Invalid::Malformed),
    };
    let payload = b64.decode(p).map_err(|_| Invalid::Malformed)?;
    let signature = b64.decode(s).map_err(|_| Invalid::Malformed)?;
    let expected = match alg {
        alg::HS256 | alg::ES256 => Some(32usize.saturating_mul(if alg == alg::ES256 { 2 } else { 1 })),
        _ => None,
    };
    if signature.is_empty() || expected.is_some_and(|n| n != signature.len()) {
        return Err(Invalid::Malformed);
    }
    let signing_input = token.get(..h.len().saturating_add(1).saturating_add(p.len())).ok_or(Invalid::Malformed)?.to_owned();
    Ok(Parsed { alg, kid, signing_input, signature, signature_text: s.to_owned(), payload })
}

/// HMAC-SHA-256 of the signing input under `key`, compared in constant time.
pub fn hs256_valid(key: &[u8], token: &Parsed) -> bool {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else { return false };
    mac.update(token.signing_input.as_bytes());
    token.alg == alg::HS256 && mac.verify_slice(&token.signature).is_ok()
}

/// HS256-sign `claims` (a JSON object) under `key`: the test tokens `edgeguard test` and the
/// playground mint.
pub fn hs256_sign(key: &[u8], claims: &serde_json::Value) -> String {
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let signature = match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(input.as_bytes());
            b64.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{input}.{signature}")
}

/// After the signature: the claims, checked against the source (`iss`, `aud`, `exp` present)
/// and reduced to those the policy reads. Time is checked on every use, not here.
fn finish(source: &Source, token: &Parsed) -> Result<Session, Invalid> {
    let payload: serde_json::Value = serde_json::from_slice(&token.payload).map_err(|_| Invalid::Malformed)?;
    let payload = payload.as_object().ok_or(Invalid::Malformed)?;
    let seconds = |name: &str| payload.get(name).and_then(serde_json::Value::as_f64).filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u64);
    let expires = seconds("exp").ok_or(Invalid::NoExpiry)?;
    if let Some(issuer) = &source.issuer
        && payload.get("iss").and_then(serde_json::Value::as_str) != Some(issuer.as_str())
    {
        return Err(Invalid::Issuer);
    }
    if !source.audience.is_empty() {
        let ok = match payload.get("aud") {
            Some(serde_json::Value::String(a)) => source.audience.contains(a),
            Some(serde_json::Value::Array(items)) => items.iter().filter_map(serde_json::Value::as_str).any(|a| source.audience.iter().any(|x| x == a)),
            _ => false,
        };
        if !ok {
            return Err(Invalid::Audience);
        }
    }
    let claims = source.claims.iter().map(|path| claim_values(payload, path)).collect();
    Ok(Session { expires, not_before: seconds("nbf"), claims })
}

/// The values at a dotted claim path (`app_metadata.role`).
fn claim_values(payload: &serde_json::Map<String, serde_json::Value>, path: &str) -> Vec<String> {
    let mut parts = path.split('.');
    let mut value = parts.next().and_then(|first| payload.get(first));
    for part in parts {
        value = value.and_then(|v| v.get(part));
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(text).collect(),
        Some(v) => text(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The key for a token: the one with its `kid` (or the only one of its type when the token
/// names none) whose type matches the algorithm — an RSA key never checks an ES256 token, and
/// no JWKS key ever checks HS256.
fn select<'k>(keys: &'k [Key], token_alg: u8, kid: Option<&str>) -> Option<&'k Key> {
    let mut fitting = keys.iter().filter(|k| k.alg == token_alg);
    match kid {
        Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid)),
        None => {
            let first = fitting.next()?;
            fitting.next().is_none().then_some(first)
        }
    }
}

/// The usable keys of a JWKS: EC P-256 (ES256) and RSA of at least 2048 bits (RS256), for
/// signatures; `None` when the text is not a JWKS.
fn parse_jwks(text: &str) -> Option<Vec<Key>> {
    let jwks: serde_json::Value = serde_json::from_str(text).ok()?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut out = Vec::new();
    for k in jwks.get("keys")?.as_array()? {
        let member = |name: &str| k.get(name).and_then(serde_json::Value::as_str);
        if member("use").is_some_and(|u| u != "sig") {
            continue;
        }
        // The members are checked as base64url before they go into the JWK text: nothing in it
        // needs escaping.
        let (alg, public) = match (member("kty"), member("crv")) {
            (Some("EC"), Some("P-256")) => {
                let (Some(x), Some(y)) = (member("x"), member("y")) else { continue };
                let sized = |c: &str| b64.decode(c).is_ok_and(|b| b.len() == 32);
                if !sized(x) || !sized(y) {
                    continue;
                }
                (alg::ES256, format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"}}"#))
            }
            (Some("RSA"), _) => {
                let (Some(n), Some(e)) = (member("n"), member("e")) else { continue };
                let bits = b64.decode(n).map_or(0, |b| b.iter().skip_while(|x| **x == 0).count().saturating_mul(8));
                if bits < 2048 || b64.decode(e).is_err() {
                    continue;
                }
                (alg::RS256, format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}"}}"#))
            }
            _ => continue,
        };
        if member("alg").is_some_and(|a| alg::from_name(a) != Some(alg)) {
            continue;
        }
        out.push(Key { kid: member("kid").map(str::to_owned), alg, jwk: public });
    }
    Some(out)
}

/// A stable seed for the token map's hasher from the engine's.
pub fn seed(engine_seed: u64) -> u64 {
    foldhash::quality::FixedState::with_seed(engine_seed).hash_one(0x5e55_1045u64)
}

/// A test session for `explain --session`, `edgeguard test` and the playground: a token with
/// `claims` (a JSON object; `exp`, `iat`, `aud` and `iss` filled in from the source unless
/// given), signed with the source's `test_secret` — or with another key when `forged` — and
/// placed where the source reads it: `Authorization: Bearer`, else (or with `cookie_chunks`)
/// its cookie as supabase-js writes it — `base64-` JSON, the `*` of the name read as `test`,
/// split into `cookie_chunks` chunks `.0`, `.1`… when more than one. `now_secs` is the test
/// clock ([`Sessions::accept_test_tokens`]); `expires_in` may be negative (an expired token).
/// `Err` says why no token can be made.
pub fn test_header(source: &Source, claims: &serde_json::Value, now_secs: u64, expires_in: i64, forged: bool, cookie_chunks: Option<usize>) -> Result<(String, String), String> {
    let Some(secret) = source.test_secret.as_deref() else {
        return Err(format!("session source `{}` has no `test_secret` to sign test tokens with", source.name));
    };
    let Some(given) = claims.as_object() else { return Err("the session claims must be a JSON object".into()) };
    let mut claims = given.clone();
    let exp = i128::from(now_secs).saturating_add(i128::from(expires_in)).max(0);
    claims.entry("exp").or_insert_with(|| serde_json::Value::from(u64::try_from(exp).unwrap_or(0)));
    claims.entry("iat").or_insert_with(|| serde_json::Value::from(now_secs));
    if let Some(aud) = source.audience.first() {
        claims.entry("aud").or_insert_with(|| serde_json::Value::from(aud.as_str()));
    }
    if let Some(iss) = &source.issuer {
        claims.entry("iss").or_insert_with(|| serde_json::Value::from(iss.as_str()));
    }
    let key: &[u8] = if forged { b"not the test secret: a forged token" } else { secret.as_bytes() };
    let token = hs256_sign(key, &serde_json::Value::Object(claims));
    if source.bearer && cookie_chunks.is_none() {
        return Ok(("authorization".into(), format!("Bearer {token}")));
    }
    let Some(glob) = &source.cookie else { return Err(format!("session source `{}` reads no cookie", source.name)) };
    let session = serde_json::json!({ "access_token": token, "token_type": "bearer", "refresh_token": "test" });
    let value = format!("base64-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(session.to_string()));
    let name = glob.parts.join("test");
    let chunks = cookie_chunks.unwrap_or(1).clamp(1, 9);
    if chunks == 1 {
        return Ok(("cookie".into(), format!("{name}={value}")));
    }
    let size = value.len().div_ceil(chunks).max(1);
    let parts: Vec<String> = value.as_bytes().chunks(size).enumerate().map(|(i, c)| format!("{name}.{i}={}", String::from_utf8_lossy(c))).collect();
    Ok(("cookie".into(), parts.join("; ")))
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    const SECRET: &[u8] = b"a-test-secret-of-some-length";

    fn source(algorithms: u8) -> Source {
        Source {
            name: "s".into(),
            cookie: Some(Glob::new("sb-*-auth-token")),
            bearer: true,
            secret: Some("SECRET".into()),
            jwks_url: Some("https://auth.test/jwks.json".into()),
            algorithms,
            issuer: None,
            audience: vec!["authenticated".into()],
            leeway_secs: 30,
            jwks_ttl_secs: 600,
            claims: vec!["sub".into(), "app_metadata.role".into()],
            test_secret: None,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn resolve(state: &mut Sessions, src: &Source, auth: &str, now: u64) -> Resolved {
        let headers = [("authorization", auth)];
        let req = RequestFacts { method: "GET", url: "/", headers: &headers, peer_ip: None, cf: crate::request::CfFacts::NONE };
        state.resolve(std::slice::from_ref(src), 0, &req, now)
    }

    fn hs_state() -> Sessions {
        let mut state = Sessions::new(1, 7);
        state.set_secret(0, SECRET);
        state
    }

    fn claims(exp: u64) -> serde_json::Value {
        serde_json::json!({ "sub": "u-1", "aud": "authenticated", "exp": exp, "app_metadata": { "role": "admin" } })
    }

    #[test]
    fn hs256_verifies_and_keeps_only_the_claims_read() {
        let src = source(alg::HS256);
        let token = hs256_sign(SECRET, &claims(2_000));
        let Resolved::Verified(s) = resolve(&mut hs_state(), &src, &format!("Bearer {token}"), 1_000) else { panic!() };
        assert_eq!(s.claims, vec![vec!["u-1".to_owned()], vec!["admin".to_owned()]]);
        assert_eq!(s.expires, 2_000);
    }

    #[test]
    fn expiry_counts_the_leeway_and_a_remembered_token_expires_too() {
        let src = source(alg::HS256);
        let mut state = hs_state();
        let auth = format!("Bearer {}", hs256_sign(SECRET, &claims(2_000)));
        assert!(matches!(resolve(&mut state, &src, &auth, 2_029), Resolved::Verified(_)));
        assert_eq!(resolve(&mut state, &src, &auth, 2_030), Resolved::Expired);
    }

    #[test]
    fn wrong_secret_audience_and_missing_exp_are_refused() {
        let src = source(alg::HS256);
        let mut state = hs_state();
        let forged = hs256_sign(b"another secret", &claims(2_000));
        assert_eq!(resolve(&mut state, &src, &format!("Bearer {forged}"), 1_000), Resolved::Invalid(Invalid::Signature));
        let anon = hs256_sign(SECRET, &serde_json::json!({ "sub": "u", "aud": "anon", "exp": 2_000 }));
        assert_eq!(resolve(&mut state, &src, &format!("Bearer {anon}"), 1_000), Resolved::Invalid(Invalid::Audience));
        let forever = hs256_sign(SECRET, &serde_json::json!({ "sub": "u", "aud": "authenticated" }));
        assert_eq!(resolve(&mut state, &src, &format!("Bearer {forever}"), 1_000), Resolved::Invalid(Invalid::NoExpiry));
    }

    #[test]
    fn without_the_secret_hs256_is_unavailable_not_accepted() {
        let src = source(alg::HS256);
        let token = hs256_sign(SECRET, &claims(2_000));
        assert_eq!(resolve(&mut Sessions::new(1, 7), &src, &format!("Bearer {token}"), 1_000), Resolved::Unavailable);
    }

    #[test]
    fn es256_asks_for_the_key_set_then_the_signature() {
        let src = source(alg::ES256 | alg::RS256);
        let mut state = Sessions::new(1, 7);
        let header = b64(br#"{"alg":"ES256","kid":"k1"}"#);
        let token = format!("{header}.{}.{}", b64(claims(2_000).to_string().as_bytes()), b64(&[7u8; 64]));
        let auth = format!("Bearer {token}");
        assert!(matches!(resolve(&mut state, &src, &auth, 1_000), Resolved::Ask(a) if matches!(*a, Ask::Jwks { source: 0, .. })));
        let xy = b64(&[1u8; 32]);
        let jwks = format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{xy}","y":"{xy}","kid":"k1","alg":"ES256","use":"sig"}}]}}"#);
        assert_eq!(state.set_jwks(0, Some(&jwks), 1_000), 1);
        let Resolved::Ask(ask) = resolve(&mut state, &src, &auth, 1_000) else { panic!() };
        let Ask::Signature(sig) = *ask else { panic!() };
        assert_eq!((sig.alg, sig.kid.as_str()), ("ES256", "k1"));
        assert_eq!(sig.input, token.rsplit_once('.').unwrap().0);
        state.verified(sig.id, true, std::slice::from_ref(&src), 1_000);
        assert!(matches!(resolve(&mut state, &src, &auth, 1_001), Resolved::Verified(_)));
    }

    #[test]
    fn a_key_set_that_cannot_be_fetched_makes_sessions_unavailable_until_a_retry() {
        let src = source(alg::ES256);
        let mut state = Sessions::new(1, 7);
        let token = format!("{}.{}.{}", b64(br#"{"alg":"ES256","kid":"k1"}"#), b64(claims(5_000).to_string().as_bytes()), b64(&[7u8; 64]));
        let auth = format!("Bearer {token}");
        assert!(matches!(resolve(&mut state, &src, &auth, 1_000), Resolved::Ask(_)));
        state.set_jwks(0, None, 1_000);
        assert_eq!(resolve(&mut state, &src, &auth, 1_010), Resolved::Unavailable);
        assert!(matches!(resolve(&mut state, &src, &auth, 1_000 + JWKS_RETRY_SECS), Resolved::Ask(_)), "asked again after the retry interval");
    }

    #[test]
    fn supabase_cookies_whole_chunked_and_wrapped() {
        let src = Source { bearer: false, ..source(alg::HS256) };
        let token = hs256_sign(SECRET, &claims(2_000));
        let session = serde_json::json!({ "access_token": token, "refresh_token": "r" }).to_string();
        let wrapped = format!("base64-{}", b64(session.as_bytes()));
        let (a, b) = wrapped.split_at(wrapped.len() / 2);
        for cookie in [
            format!("sb-ref-auth-token={wrapped}"),
            format!("x=1; sb-ref-auth-token.1={b}; sb-ref-auth-token.0={a}"),
            format!("sb-ref-auth-token={}", session.replace('"', "%22").replace('{', "%7B").replace('}', "%7D").replace(':', "%3A").replace(',', "%2C")),
            format!("sb-ref-auth-token={token}"),
        ] {
            let headers = [("cookie", cookie.as_str())];
            let req = RequestFacts { method: "GET", url: "/", headers: &headers, peer_ip: None, cf: crate::request::CfFacts::NONE };
            assert!(matches!(hs_state().resolve(std::slice::from_ref(&src), 0, &req, 1_000), Resolved::Verified(_)), "{cookie}");
        }
        // A missing chunk is no session.
        let headers = [("cookie", format!("sb-ref-auth-token.1={b}"))];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let req = RequestFacts { method: "GET", url: "/", headers: &headers, peer_ip: None, cf: crate::request::CfFacts::NONE };
        assert_eq!(hs_state().resolve(std::slice::from_ref(&src), 0, &req, 1_000), Resolved::Absent);
    }

    #[test]
    fn jwks_keys_of_the_wrong_kind_size_or_use_are_skipped() {
        let xy = b64(&[1u8; 32]);
        let short = b64(&[1u8; 16]);
        let n2048 = b64(&[0xc5u8; 256]);
        let n1024 = b64(&[0xc5u8; 128]);
        let jwks = format!(
            r#"{{"keys":[
            {{"kty":"EC","crv":"P-256","x":"{xy}","y":"{xy}","kid":"ok-ec"}},
            {{"kty":"EC","crv":"P-384","x":"{xy}","y":"{xy}","kid":"p384"}},
            {{"kty":"EC","crv":"P-256","x":"{short}","y":"{xy}","kid":"short"}},
            {{"kty":"EC","crv":"P-256","x":"{xy}","y":"{xy}","kid":"enc","use":"enc"}},
            {{"kty":"RSA","n":"{n2048}","e":"AQAB","kid":"ok-rsa"}},
            {{"kty":"RSA","n":"{n1024}","e":"AQAB","kid":"weak"}},
            {{"kty":"RSA","n":"{n2048}","e":"AQAB","kid":"mislabelled","alg":"ES256"}},
            {{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}}
        ]}}"#
        );
        let keys = parse_jwks(&jwks).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["ok-ec", "ok-rsa"]);
        // An ES256 token never gets the RSA key, nor the other way round; HS256 never a JWKS key.
        assert!(select(&keys, alg::ES256, Some("ok-rsa")).is_none());
        assert!(select(&keys, alg::RS256, Some("ok-ec")).is_none());
        assert!(select(&keys, alg::HS256, Some("hmac")).is_none());
        assert!(select(&keys, alg::HS256, None).is_none());
    }

    // proptest needs threads, failure files and OS randomness: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        /// Any bytes as a Bearer token or a session cookie: no panic, and nothing verified
        /// unless it is a token signed with the secret.
        #[test]
        fn arbitrary_material_never_panics_or_verifies(text in "\\PC{0,400}", cookie in any::<bool>()) {
            let src = source(alg::HS256 | alg::ES256 | alg::RS256);
            let mut state = hs_state();
            let value = if cookie { format!("sb-x-auth-token={text}") } else { format!("Bearer {text}") };
            let headers = [(if cookie { "cookie" } else { "authorization" }, value.as_str())];
            let req = RequestFacts { method: "GET", url: "/", headers: &headers, peer_ip: None, cf: crate::request::CfFacts::NONE };
            let r = state.resolve(std::slice::from_ref(&src), 0, &req, 1_000);
            prop_assert!(!matches!(r, Resolved::Verified(_)), "{}", text);
        }

        /// A token with any header and payload: `alg: none`, an empty or altered signature, and
        /// an HS256 signature presented under another algorithm are never accepted.
        #[test]
        fn unsigned_altered_or_relabelled_tokens_are_refused(
            sub in "[a-z0-9-]{1,20}",
            alg_name in prop::sample::select(vec!["none", "None", "NONE", "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", ""]),
            flip in 0usize..32,
        ) {
            let src = source(alg::HS256 | alg::ES256 | alg::RS256);
            let mut state = hs_state();
            let body = serde_json::json!({ "sub": sub, "aud": "authenticated", "exp": 5_000 });
            let good = hs256_sign(SECRET, &body);
            let (input, sig) = good.rsplit_once('.').unwrap();
            let payload = input.split('.').nth(1).unwrap();
            // alg: none (and friends) with no signature, or with the HS256 signature.
            let relabelled = b64(format!(r#"{{"alg":"{alg_name}","typ":"JWT"}}"#).as_bytes());
            for token in [format!("{relabelled}.{payload}."), format!("{relabelled}.{payload}.{sig}")] {
                let r = resolve(&mut state, &src, &format!("Bearer {token}"), 1_000);
                prop_assert!(!matches!(r, Resolved::Verified(_)), "{}", token);
            }
            // One bit of the signature flipped.
            let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).unwrap();
            if let Some(b) = raw.get_mut(flip) { *b ^= 1; }
            let altered = format!("{input}.{}", b64(&raw));
            prop_assert_eq!(resolve(&mut state, &src, &format!("Bearer {altered}"), 1_000), Resolved::Invalid(Invalid::Signature));
            // The genuine one passes.
            let genuine = resolve(&mut state, &src, &format!("Bearer {good}"), 1_000);
            prop_assert!(matches!(genuine, Resolved::Verified(_)));
        }
    }
}
