//! The compiled policy: plain data the compiler writes and the engine loads.
//!
//! Everything here is precomputed by the compiler (header values rendered, routes built into a
//! matcher trie, references resolved to indices) so that the engine never re-validates. The
//! encoding is `MAGIC ‖ format version (u32 LE) ‖ SHA-256(body) ‖ body`, with
//! `body = postcard(Bundle)`: deterministic (no hash maps), compact and quick to decode at
//! isolate start. The digest is the bundle's revision, so a policy's revision names exactly the
//! bytes the edge enforces (environment overlay included), and a bundle damaged in any byte, or
//! cut short, is refused as a whole rather than loaded half right.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cidr::Cidr;
use crate::glob::Glob;
use crate::routes::Matcher;

/// Bumped whenever the serialized shape of [`Bundle`] changes.
pub const FORMAT_VERSION: u32 = 8;
const MAGIC: [u8; 4] = *b"EGB\x01";
/// Magic, format version and digest: the bytes before the postcard body.
const HEADER_LEN: usize = 4 + 4 + 32;

/// Why bytes could not be loaded as a bundle. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    NotABundle,
    FormatVersion { found: u32, expected: u32 },
    /// The body does not hash to the digest in the header: damaged or cut short.
    Checksum,
    Corrupt(String),
    BadRegex(String),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::NotABundle => write!(f, "not an edgeguard bundle (bad magic bytes)"),
            LoadError::FormatVersion { found, expected } => write!(
                f,
                "bundle format version {found} is not supported by this engine (expects {expected}); recompile the policy with a matching edgeguard"
            ),
            LoadError::Checksum => write!(f, "bundle is damaged or truncated (its SHA-256 does not match); write it again with `edgeguard build`"),
            LoadError::Corrupt(e) => write!(f, "bundle is corrupt: {e}"),
            LoadError::BadRegex(e) => write!(f, "bundle holds an invalid parameter regex: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A whole compiled policy for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// SHA-256 (hex) of the encoded bundle body: the revision the health report (`releaseId`),
    /// every log line and the metrics name. Not part of the body itself: [`Bundle::to_bytes`]
    /// computes it and [`Bundle::from_bytes`] restores it from the header.
    #[serde(skip)]
    pub revision: String,
    pub app: App,
    pub client_ip: ClientIp,
    pub sanitize: SanitizeLimits,
    pub https: Https,
    /// Distinct response header plans; routes refer to them by index.
    pub header_sets: Vec<HeaderSet>,
    /// Route 0.. as written in the policy (after the environment overlay).
    pub routes: Vec<Route>,
    /// Rule for requests that match no route.
    pub defaults: Route,
    pub matcher: Matcher,
    pub limits: Vec<Limit>,
    pub limiter: LimiterConfig,
    pub api_keys: Vec<ApiKey>,
    pub origins: Vec<Origin>,
    pub deploy: Deploy,
    pub health: Option<Health>,
    /// `[observe]`: log lines, metrics, the CSP report intake, PostHog and Analytics Engine.
    pub observe: Observe,
    /// `[cache]`: the key version and what makes a request personal (never cached).
    pub cache: CacheSettings,
    /// `[fallback]`: the page answered when no origin can and nothing stale is stored.
    pub fallback: Option<Fallback>,
    /// `[maintenance]`: who still reaches the app while `EDGE_MAINTENANCE` is on.
    pub maintenance: Maintenance,
    /// `[sessions.<name>]`: where verified sessions come from.
    pub sessions: Vec<crate::sessions::Source>,
    /// `[stats]`: fleet-wide statistics flushed to the `EDGEGUARD_STATS` Durable Object.
    pub stats: crate::stats::StatsSettings,
    /// `[slo.<name>]`, by name.
    pub slos: Vec<crate::slo::Slo>,
    /// `[alerts]`: where SLO alerts are sent.
    pub alerts: crate::slo::Alerts,
    /// `[shield]`: the per-client suspicion budget; `None` when the policy has no `[shield]`.
    pub shield: Option<crate::shield::Shield>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    pub environment: String,
    /// Lowercase host names without port or trailing dot; empty = any host.
    pub hosts: Vec<String>,
    pub canonical_host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientIp {
    /// Lowercase name of the one header trusted for the client address.
    pub from: Option<String>,
    /// Lowercase name of a header whose value is trusted as the request id.
    pub request_id_from: Option<String>,
    /// Leading bits of an IPv6 client address that identify the client in limit keys (a home,
    /// mobile or VPS client owns a /64); IPv4-mapped addresses count as IPv4.
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SanitizeLimits {
    pub max_url_bytes: u32,
    pub max_header_bytes: u32,
    pub max_headers: u32,
    /// Request headers removed before forwarding besides the engine's own list
    /// ([`crate::engine::STRIPPED_REQUEST_HEADERS`]), lowercase.
    pub strip_headers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Https {
    pub redirect: bool,
}

/// What the response phase does to headers: all names lowercase, values pre-rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSet {
    /// Replaces whatever the origin sent.
    pub set: Vec<(String, String)>,
    /// Added only where the origin sent none.
    pub default: Vec<(String, String)>,
    /// Removed from the origin's response.
    pub remove: Vec<String>,
    /// `Strict-Transport-Security` value, sent on https responses only.
    pub hsts: Option<String>,
    /// The route's `cache`: `Cache-Control` for successful (2xx, 304) origin responses only, so
    /// an error page is never cached for as long as the asset it stands in for.
    pub cache: Option<String>,
    /// `[csp] strict = "nonce"`: the policy HTML responses get once the edge has put a fresh
    /// nonce on their scripts and styles. Every other response keeps the CSP in `set`.
    pub strict: Option<StrictCsp>,
}

/// A nonce-based CSP whose value carries [`crate::csp::NONCE_PLACEHOLDER`] where each
/// response's nonce goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrictCsp {
    /// `content-security-policy`, or `content-security-policy-report-only` while a team
    /// watches violations with the legacy policy still enforced.
    pub header: String,
    pub value: String,
}

/// Standard methods as bits, so a method check is one AND.
pub mod method {
    pub const GET: u16 = 1;
    pub const HEAD: u16 = 1 << 1;
    pub const POST: u16 = 1 << 2;
    pub const PUT: u16 = 1 << 3;
    pub const PATCH: u16 = 1 << 4;
    pub const DELETE: u16 = 1 << 5;
    pub const OPTIONS: u16 = 1 << 6;
    pub const TRACE: u16 = 1 << 7;
    pub const CONNECT: u16 = 1 << 8;
    pub const ALL: [(&str, u16); 9] = [
        ("GET", GET),
        ("HEAD", HEAD),
        ("POST", POST),
        ("PUT", PUT),
        ("PATCH", PATCH),
        ("DELETE", DELETE),
        ("OPTIONS", OPTIONS),
        ("TRACE", TRACE),
        ("CONNECT", CONNECT),
    ];

    /// The bit of a method token (case-sensitive, as HTTP methods are), 0 if unknown.
    pub fn bit(name: &str) -> u16 {
        ALL.iter().find(|(n, _)| *n == name).map_or(0, |(_, b)| *b)
    }

    /// `Allow` header value for a method set, in the canonical order above.
    pub fn allow_value(mask: u16) -> String {
        let names: Vec<&str> = ALL.iter().filter(|(_, b)| mask & b != 0).map(|(n, _)| *n).collect();
        names.join(", ")
    }
}

/// One compiled route (or the defaults rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The pattern as written, reported by `explain` (`None` for the defaults rule).
    pub pattern: Option<String>,
    pub methods: u16,
    /// Status answered at the edge when the route is blocked in this environment.
    pub block: Option<u16>,
    pub require_headers: Vec<String>,
    pub require_cookie: Option<Glob>,
    pub ip_allow: Vec<Cidr>,
    pub ip_deny: Vec<Cidr>,
    pub api_key: Option<u16>,
    pub max_body: Option<u64>,
    pub limit: Option<u16>,
    /// Index into `Bundle::header_sets` (route overrides, cache and CSP already folded in).
    pub headers: u16,
    /// Pinned origin, overriding deploy rules.
    pub origin: Option<u16>,
    /// Next.js Server Actions (a request with a `Next-Action` header) may be called here.
    pub server_actions: bool,
    /// Edge caching of this route's GET/HEAD answers (`cache = { edge = … }`).
    pub edge_cache: Option<EdgeCache>,
    /// `require_session`: a verified session (and claims) this route requires.
    pub require_session: Option<crate::sessions::Requirement>,
    /// `bots`: what each bot category gets here (resolved over `[defaults]`).
    pub bots: crate::bots::BotRules,
    /// `geo_allow` / `geo_deny`: where requests may come from (`request.cf`).
    pub geo_allow: Option<crate::geo::GeoSet>,
    pub geo_deny: Option<crate::geo::GeoSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKey {
    Ip,
    Header,
    Cookie,
    IpRoute,
    /// `session:<claim>`: a verified session's claim; the address without one.
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Counted in the isolate.
    Local,
    /// Counted exactly in a Durable Object shard (the worker's `EdgeguardLimiter`).
    Global,
    /// Cloudflare's Workers Rate Limiting binding: per location, eventually consistent.
    Cloudflare,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub name: String,
    /// Requests per window (the `q` of `RateLimit-Policy`).
    pub count: u64,
    pub window_secs: u64,
    pub burst: u64,
    pub key: LimitKey,
    /// Lowercase header or cookie name for `Header`/`Cookie` keys.
    pub key_name: Option<String>,
    pub scope: Scope,
    pub shadow: bool,
    /// When the global limiter cannot be asked (error or timeout): refuse instead of admit.
    pub on_error_deny: bool,
    /// `RateLimit-Policy` item, rendered by the compiler.
    pub policy_header: String,
    /// For `session:<claim>` keys: the source and the claim (index into its `claims`).
    pub session: Option<SessionKey>,
    /// `geo`: the limit counts only requests from these places (and those of unknown location).
    pub geo: Option<crate::geo::GeoSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionKey {
    pub source: u16,
    pub claim: u16,
}

impl Limit {
    /// The key as the policy writes it: `ip`, `ip+route`, `header:<name>`, `cookie:<name>`,
    /// `session:<claim>`.
    pub fn key_text(&self) -> String {
        let name = self.key_name.as_deref().unwrap_or("");
        match self.key {
            LimitKey::Ip => "ip".to_owned(),
            LimitKey::IpRoute => "ip+route".to_owned(),
            LimitKey::Header => format!("header:{name}"),
            LimitKey::Cookie => format!("cookie:{name}"),
            LimitKey::Session => format!("session:{name}"),
        }
    }

    /// A per-isolate limit keyed on the client address, enforced (the shape of the edge's own
    /// limits, such as the CSP report intake's default).
    pub fn local_per_ip(name: &str, count: u64, window_secs: u64, burst: u64) -> Limit {
        Limit {
            name: name.to_owned(),
            count,
            window_secs,
            burst,
            key: LimitKey::Ip,
            key_name: None,
            scope: Scope::Local,
            shadow: false,
            on_error_deny: false,
            policy_header: crate::vocab::policy_header(name, count, window_secs),
            session: None,
            geo: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimiterConfig {
    /// Most keys held per isolate before the stalest are evicted.
    pub max_keys: u32,
    /// Durable Object shards global limits are spread over (keys hash to one shard).
    pub global_shards: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    /// Lowercase header carrying the key.
    pub header: String,
    pub sha256: Vec<[u8; 32]>,
    /// The limit failed checks of this key count against, per client (index into `limits`):
    /// past it, the client's key attempts get 429 until it recovers, right or wrong.
    pub failures: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub name: String,
    pub url: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub active: u16,
    pub canary: Option<Canary>,
    pub sticky_cookie: String,
    /// Methods retried once on the other origin after a connect error or a 5xx (0 = off).
    pub failover_methods: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub origin: u16,
    /// Share of new clients sent to the canary, in basis points (1/100 of a percent).
    pub basis_points: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub path: String,
    pub probe_path: String,
    pub timeout_ms: u64,
    pub cache_ms: u64,
    /// A probe slower than this turns its origin's check to `warn` (`[health] warn_after`).
    pub warn_after_ms: u64,
    /// Index into header sets used for the health answer.
    pub headers: u16,
}

/// `[observe]`, compiled. Present in every bundle (the defaults when the policy has no table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observe {
    /// Which requests get a log line.
    pub log: LogLevel,
    /// Share of `info` lines written, in millionths (1 000 000 = all).
    pub sample_ppm: u32,
    /// How much of the client address log lines, events and data points carry.
    pub client_ip: IpDetail,
    /// The Prometheus endpoint, when the policy asks for one.
    pub metrics: Option<MetricsEndpoint>,
    /// Write a data point per request to the `EDGEGUARD_ANALYTICS` binding when it is bound.
    pub analytics: bool,
    /// The CSP report intake, when `csp.report_to` names a path on this site.
    pub csp: Option<CspIntake>,
    pub posthog: Option<PostHog>,
    /// Index into header sets used for the edge's own answers (reports, metrics).
    pub headers: u16,
}

/// Log levels, least to most verbose: a policy's level writes its own lines and the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
        }
    }
}

/// `observe.client_ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpDetail {
    /// IPv4 to its /24, IPv6 to its /48.
    Truncate,
    Full,
    Omit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsEndpoint {
    pub path: String,
    /// Index into `api_keys`: the key a scraper must present.
    pub api_key: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CspIntake {
    /// Normalized paths the edge accepts reports at (every `report_to` that is a path).
    pub paths: Vec<String>,
    /// Index into `limits`: counted per client, in the isolate. `None`: not limited.
    pub limit: Option<u16>,
    /// A report with the same document, directive and blocked URL within this long is dropped.
    pub dedupe_ms: u64,
    /// Largest report body accepted.
    pub max_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostHog {
    /// `https://…` without a trailing slash; events go to `<host>/batch/`.
    pub host: String,
    /// Bits of [`event`].
    pub events: u8,
    /// Share of forwarded page views sent as `$pageview`, in millionths.
    pub pageview_ppm: u32,
    /// At most `rate_count` events per `rate_window_secs` per isolate; the rest are dropped.
    pub rate_count: u64,
    pub rate_window_secs: u64,
}

/// PostHog event kinds (`observe.posthog.events`), as bits.
pub mod event {
    pub const REFUSAL: u8 = 1;
    pub const CSP_VIOLATION: u8 = 1 << 1;
    pub const ORIGIN_FAILURE: u8 = 1 << 2;
    pub const PAGEVIEW: u8 = 1 << 3;
}

impl Default for Observe {
    fn default() -> Observe {
        Observe {
            log: LogLevel::Info,
            sample_ppm: 1_000_000,
            client_ip: IpDetail::Truncate,
            metrics: None,
            analytics: true,
            csp: None,
            posthog: None,
            headers: 0,
        }
    }
}

impl Bundle {
    /// Deterministic bytes: the same bundle always encodes to the same file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LoadError> {
        let body = postcard::to_allocvec(self).map_err(|e| LoadError::Corrupt(e.to_string()))?;
        let mut out = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&body));
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The revision these contents encode to (what [`Bundle::to_bytes`] writes as the digest),
    /// as lowercase hex. The compiler stores it in [`Bundle::revision`].
    pub fn digest_hex(&self) -> Result<String, LoadError> {
        let body = postcard::to_allocvec(self).map_err(|e| LoadError::Corrupt(e.to_string()))?;
        Ok(hex(&Sha256::digest(&body)))
    }

    /// Decode bytes written by [`Bundle::to_bytes`]: magic, format version and digest are
    /// checked before anything is decoded.
    ///
    /// # Examples
    ///
    /// A bundle survives its bytes (the `.egb` file beside the worker), its revision included;
    /// a flipped byte is refused before anything is decoded.
    ///
    /// ```
    /// use edgeguard_core::{Bundle, Engine, LoadError};
    ///
    /// let policy = "version = 1\n[app]\nname = \"hello\"\n[origins.app]\nurl = \"https://hello.fly.dev\"\n";
    /// let bundle = edgeguard_compiler::compile(policy, &Default::default()).bundle.expect("the policy compiles");
    /// let bytes = bundle.to_bytes()?;
    /// assert_eq!(Bundle::from_bytes(&bytes)?, bundle);
    /// assert_eq!(bundle.revision, bundle.digest_hex()?);
    /// assert_eq!(Engine::load(&bytes)?.bundle().app.name, "hello");
    ///
    /// let mut corrupt = bytes.clone();
    /// if let Some(last) = corrupt.last_mut() {
    ///     *last ^= 1;
    /// }
    /// assert!(matches!(Bundle::from_bytes(&corrupt), Err(LoadError::Checksum)));
    /// assert!(Bundle::from_bytes(b"not a bundle").is_err());
    /// # Ok::<(), LoadError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, LoadError> {
        let header = read_header(bytes)?;
        if header.format != FORMAT_VERSION {
            return Err(LoadError::FormatVersion { found: header.format, expected: FORMAT_VERSION });
        }
        let body = bytes.get(HEADER_LEN..).ok_or(LoadError::Checksum)?;
        if Sha256::digest(body).as_slice() != header.digest {
            return Err(LoadError::Checksum);
        }
        let (mut bundle, trailing) =
            postcard::take_from_bytes::<Bundle>(body).map_err(|e| LoadError::Corrupt(e.to_string()))?;
        if !trailing.is_empty() {
            return Err(LoadError::Corrupt(format!("{} trailing bytes", trailing.len())));
        }
        bundle.check_indices()?;
        bundle.revision = hex(header.digest);
        Ok(bundle)
    }

    /// Cross-references must point inside their tables, so the engine can use `get` without a
    /// fallback path ever being taken on a bundle the compiler wrote.
    fn check_indices(&self) -> Result<(), LoadError> {
        let sets = self.header_sets.len();
        let bad = |what: &str| Err(LoadError::Corrupt(format!("{what} index out of range")));
        for r in self.routes.iter().chain(core::iter::once(&self.defaults)) {
            if usize::from(r.headers) >= sets {
                return bad("header set");
            }
            if r.limit.is_some_and(|l| usize::from(l) >= self.limits.len()) {
                return bad("limit");
            }
            if r.api_key.is_some_and(|k| usize::from(k) >= self.api_keys.len()) {
                return bad("api key");
            }
            if r.origin.is_some_and(|o| usize::from(o) >= self.origins.len()) {
                return bad("origin");
            }
            if r.bots.limits().any(|l| usize::from(l) >= self.limits.len()) {
                return bad("bots limit");
            }
        }
        if !self.origins.is_empty() && usize::from(self.deploy.active) >= self.origins.len() {
            return bad("active origin");
        }
        if self.deploy.canary.as_ref().is_some_and(|c| usize::from(c.origin) >= self.origins.len()) {
            return bad("canary origin");
        }
        if self.health.as_ref().is_some_and(|h| usize::from(h.headers) >= sets) {
            return bad("health header set");
        }
        let observe = &self.observe;
        if usize::from(observe.headers) >= sets {
            return bad("observe header set");
        }
        if self.api_keys.iter().any(|k| k.failures.is_some_and(|l| usize::from(l) >= self.limits.len())) {
            return bad("api key failure limit");
        }
        if observe.metrics.as_ref().is_some_and(|m| usize::from(m.api_key) >= self.api_keys.len()) {
            return bad("metrics api key");
        }
        if observe.csp.as_ref().and_then(|c| c.limit).is_some_and(|l| usize::from(l) >= self.limits.len()) {
            return bad("csp report limit");
        }
        if self.slos.iter().any(|s| s.routes.iter().any(|r| *r as usize >= self.routes.len())) {
            return bad("slo route");
        }
        self.matcher.check(self.routes.len()).map_err(LoadError::Corrupt)
    }
}

/// What a bundle file says about itself before its body is read: enough for a deploy check
/// (`edgeguard doctor`) to tell a bundle from another edgeguard version apart from a damaged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub format: u32,
    /// SHA-256 of the body: the revision, as bytes.
    pub digest: &'a [u8],
}

/// Magic, format version and digest of bundle bytes, without decoding the body.
pub fn read_header(bytes: &[u8]) -> Result<Header<'_>, LoadError> {
    let (magic, rest) = bytes.split_at_checked(4).ok_or(LoadError::NotABundle)?;
    if magic != MAGIC {
        return Err(LoadError::NotABundle);
    }
    let (version, rest) = rest.split_at_checked(4).ok_or(LoadError::NotABundle)?;
    let mut v = [0u8; 4];
    v.copy_from_slice(version);
    let format = u32::from_le_bytes(v);
    // An older format may frame its body differently: its digest is only read for this one.
    let digest = if format == FORMAT_VERSION { rest.get(..32).ok_or(LoadError::Checksum)? } else { &[] };
    Ok(Header { format, digest })
}

/// Lowercase hex of bytes: a digest, a request id.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The edge cache's settings (the rules that read them are in `cache`)
// ---------------------------------------------------------------------------------------------

/// A route's edge caching: `cache = { edge, stale_while_revalidate, stale_if_error, credentialed }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeCache {
    /// Seconds a stored answer is served without asking the origin (0: always ask; the stored
    /// copy is then only a stand-in for errors).
    pub edge_secs: u64,
    /// Seconds past `edge_secs` a stale copy is still served while one refresh runs behind it.
    pub swr_secs: u64,
    /// Seconds past `edge_secs` a stale copy stands in for an origin that fails (5xx, timeout,
    /// unreachable).
    pub sie_secs: u64,
    /// Store and serve for requests carrying credentials too: only for answers identical for
    /// every user.
    pub credentialed: bool,
}

impl EdgeCache {
    /// How long the Cache API keeps a copy: as long as any use of it lasts.
    pub fn keep_secs(&self) -> u64 {
        self.edge_secs.saturating_add(self.swr_secs.max(self.sie_secs))
    }
}

/// `[cache]`: what every cached route shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSettings {
    /// Part of every key: changing it misses every copy stored before (a purge by deploy).
    pub version: String,
    /// Cookies that make a request personal (globs on the name); the edge's own lane cookie
    /// never does.
    pub personal_cookies: Vec<Glob>,
    /// Request headers that make a request personal (lowercase): `authorization`, every API
    /// key header, and the policy's own.
    pub personal_headers: Vec<String>,
}

impl Default for CacheSettings {
    fn default() -> CacheSettings {
        CacheSettings { version: "1".to_owned(), personal_cookies: vec![Glob::new("*")], personal_headers: vec!["authorization".to_owned()] }
    }
}

/// `[fallback]`: the page answered with 503 to page requests when no origin can answer and
/// nothing stale is stored, and to everyone outside the allow-list in maintenance mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    pub html: String,
    /// `Retry-After` of the fallback answer when the origin is down.
    pub retry_after_secs: u64,
}

/// `[maintenance]`: who still reaches the app while `EDGE_MAINTENANCE` is on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Maintenance {
    pub allow_ips: Vec<Cidr>,
    /// Lowercase header name whose value, equal to the worker secret `EDGE_MAINTENANCE_SECRET`,
    /// lets a request through.
    pub bypass_header: Option<String>,
    pub retry_after_secs: u64,
}
