//! The policy language as typed structs. These derive both the serde reader and the JSON Schema
//! (`edgeguard schema`), so the schema, the "unknown key" check and the reader cannot drift.
//! Values that diagnostics point at are `Spanned`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;
pub type Map<T> = BTreeMap<S<String>, T>;

/// An edgeguard policy (language version 1).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Language version; only 1 exists.
    #[schemars(with = "Option<i64>")]
    pub version: Option<S<i64>>,
    pub app: Option<App>,
    pub client_ip: Option<ClientIp>,
    pub sanitize: Option<Sanitize>,
    pub https: Option<Https>,
    pub headers: Option<Headers>,
    pub csp: Option<Csp>,
    /// Rules for requests that match no route; each route overrides them key by key.
    pub defaults: Option<Rules>,
    #[serde(default)]
    pub routes: Vec<Rules>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, LimitDef>")]
    pub limits: Map<LimitDef>,
    pub limiter: Option<LimiterDef>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ApiKeyDef>")]
    pub api_keys: Map<ApiKeyDef>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, OriginDef>")]
    pub origins: Map<OriginDef>,
    pub deploy: Option<Deploy>,
    pub health: Option<Health>,
    /// What the edge tells operators: request log lines, metrics, CSP reports, PostHog events
    /// and Analytics Engine data points.
    pub observe: Option<Observe>,
    /// What every edge-cached route shares: the key version, what makes a request personal.
    pub cache: Option<CacheSettingsDef>,
    /// The page answered (503) to page requests when no origin can answer and nothing stale
    /// is stored, and during maintenance.
    pub fallback: Option<FallbackDef>,
    /// Who still reaches the app while maintenance mode (`EDGE_MAINTENANCE=1`) is on.
    pub maintenance: Option<MaintenanceDef>,
    /// Where verified sessions come from: a JWT in a cookie or a Bearer header, checked against
    /// a JWKS or an HS256 secret.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SessionDef>")]
    pub sessions: Map<SessionDef>,
    /// Fleet-wide statistics: every isolate's numbers merged in one Durable Object, and the
    /// dashboard that shows them.
    pub stats: Option<StatsDef>,
    /// Service level objectives over sets of routes, by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SloDef>")]
    pub slo: Map<SloDef>,
    /// Where SLO burn-rate alerts go: worker variables (secrets) holding webhook URLs.
    pub alerts: Option<AlertsDef>,
    /// The per-client suspicion budget: probes for paths no app serves and injection
    /// signatures suspend a client past a threshold (docs/shield.md).
    pub shield: Option<ShieldDef>,
    /// Overlays merged over the rest when `app.environment` names them.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Policy>")]
    pub env: Map<Policy>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    #[schemars(with = "Option<String>")]
    pub name: Option<S<String>>,
    /// Picks the `[env.<name>]` overlay; used by `only_in` / `except_in`.
    #[schemars(with = "Option<String>")]
    pub environment: Option<S<String>>,
    /// Hosts this edge serves; any other Host gets 421. Empty or absent: any host.
    #[schemars(with = "Option<Vec<String>>")]
    pub hosts: Option<Vec<S<String>>>,
    /// Other listed hosts redirect here (after the https hop).
    #[schemars(with = "Option<String>")]
    pub canonical_host: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIp {
    /// The one request header trusted for the client address (e.g. `cf-connecting-ip`).
    #[schemars(with = "Option<String>")]
    pub from: Option<S<String>>,
    /// A request header trusted as the request id (e.g. `cf-ray`); otherwise the edge makes one.
    #[schemars(with = "Option<String>")]
    pub request_id_from: Option<S<String>>,
    /// Leading bits of an IPv6 client address that identify one client in rate-limit keys
    /// (default 64: a home, mobile or VPS client owns a whole /64). 32–128.
    #[schemars(with = "Option<i64>")]
    pub ipv6_prefix: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sanitize {
    /// Longest request target accepted (default "8KiB"); longer → 414.
    #[schemars(with = "Option<String>")]
    pub max_url: Option<S<String>>,
    /// Most bytes of request headers (default "32KiB"); more → 431.
    #[schemars(with = "Option<String>")]
    pub max_header_bytes: Option<S<String>>,
    /// Most request header fields (default 100); more → 431.
    #[schemars(with = "Option<i64>")]
    pub max_headers: Option<S<i64>>,
    /// Request headers removed before forwarding, besides edgeguard's own list (forwarding,
    /// method-override and Next.js internal headers).
    #[schemars(with = "Option<Vec<String>>")]
    pub strip_headers: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Https {
    /// Redirect plain http to https on the same host (default true).
    #[schemars(with = "Option<bool>")]
    pub redirect: Option<S<bool>>,
    /// `Strict-Transport-Security`, sent on https responses only; `false` turns it off.
    #[schemars(with = "Option<HstsValue>")]
    pub hsts: Option<S<HstsValue>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HstsValue {
    Enabled(bool),
    Settings(Hsts),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    /// A duration ("1y", "180d") or seconds.
    pub max_age: Option<DurationOrSeconds>,
    pub include_subdomains: Option<bool>,
    pub preload: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DurationOrSeconds {
    Seconds(i64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// helmet 8's default headers.
    Helmet,
    /// helmet plus a locked-down CSP, COEP, Permissions-Policy and a 2-year HSTS.
    Strict,
    /// No headers beyond what `set` and `default` list.
    None,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// Header preset; only at the top level (default "helmet").
    #[schemars(with = "Option<Preset>")]
    pub preset: Option<S<Preset>>,
    /// Replaces whatever the origin sent.
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub set: Option<Map<S<String>>>,
    /// Only where the origin sent none.
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub default: Option<Map<S<String>>>,
    /// Removed from the origin's response.
    #[schemars(with = "Option<Vec<String>>")]
    pub remove: Option<Vec<S<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CspMode {
    Enforce,
    ReportOnly,
    Off,
}

/// `[csp] strict`: whether HTML responses get a nonce-based policy from the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CspStrict {
    /// A fresh nonce per HTML response on every script and style tag, and a `'nonce-…'
    /// 'strict-dynamic'` script-src derived from the directives (Google's strict CSP).
    Nonce,
    /// The directives as written, on every response (the default).
    #[default]
    Off,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Csp {
    #[schemars(with = "Option<CspMode>")]
    pub mode: Option<S<CspMode>>,
    /// `"nonce"`: HTML responses get a strict, nonce-based policy derived from the directives
    /// (the edge puts a fresh nonce on their scripts and styles); other responses keep the
    /// directives as written. Default `"off"`.
    #[schemars(with = "Option<CspStrict>")]
    pub strict: Option<S<CspStrict>>,
    /// Path where the edge accepts violation reports (adds `report-uri` and `report-to`).
    #[schemars(with = "Option<String>")]
    pub report_to: Option<S<String>>,
    /// Directive name → sources. `true` for value-less directives such as
    /// `upgrade-insecure-requests`.
    #[schemars(with = "Option<BTreeMap<String, DirectiveValue>>")]
    pub directives: Option<Map<S<DirectiveValue>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DirectiveValue {
    Flag(bool),
    Sources(Vec<String>),
}

/// A route, or `[defaults]` (which may not use `path`, `params`, `block`, `only_in`,
/// `except_in`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// `:name` one segment, `*` inside one segment, `**` the rest of the path (last only);
    /// Next.js `[id]`, `[...rest]`, `[[...rest]]` are accepted too.
    #[schemars(with = "Option<String>")]
    pub path: Option<S<String>>,
    /// Allowed methods; others → 405 with `Allow`.
    #[schemars(with = "Option<Vec<String>>")]
    pub methods: Option<Vec<S<String>>>,
    /// Parameter types: "uuid" | "int" | "slug" | "re:<regex>"; no match → 404.
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub params: Option<Map<S<String>>>,
    /// Answer at the edge with this status (`true` = 404); the origin is never contacted.
    #[schemars(with = "Option<BlockValue>")]
    pub block: Option<S<BlockValue>>,
    /// Block only in these environments.
    #[schemars(with = "Option<Vec<String>>")]
    pub only_in: Option<Vec<S<String>>>,
    /// Block in every environment except these.
    #[schemars(with = "Option<Vec<String>>")]
    pub except_in: Option<Vec<S<String>>>,
    /// Headers that must be present; missing → 400.
    #[schemars(with = "Option<Vec<String>>")]
    pub require_headers: Option<Vec<S<String>>>,
    /// A cookie whose name matches this glob must be present; missing → 401.
    #[schemars(with = "Option<String>")]
    pub require_cookie: Option<S<String>>,
    /// A verified session from a `[sessions.<name>]` source (401 without one), with claims
    /// (403 without them): "supabase" or `{ source = "supabase", claims = { role = "admin" } }`.
    #[schemars(with = "Option<RequireSessionSchema>")]
    pub require_session: Option<S<RequireSessionRef>>,
    /// CIDR blocks allowed; others → 403.
    #[schemars(with = "Option<Vec<String>>")]
    pub ip_allow: Option<Vec<S<String>>>,
    /// CIDR blocks refused with 403.
    #[schemars(with = "Option<Vec<String>>")]
    pub ip_deny: Option<Vec<S<String>>>,
    /// Name of an `[api_keys.<name>]` entry; missing or wrong key → 401.
    #[schemars(with = "Option<String>")]
    pub api_key: Option<S<String>>,
    /// Largest body (Content-Length above → 413; a body without length → 411).
    #[schemars(with = "Option<String>")]
    pub max_body: Option<S<String>>,
    /// A `[limits.<name>]`, an inline limit, or "none".
    #[schemars(with = "Option<LimitRefSchema>")]
    pub limit: Option<S<LimitRef>>,
    /// `Cache-Control` set on successful responses, or an edge cache table
    /// (`{ edge, stale_while_revalidate, stale_if_error, control, credentialed }`).
    #[schemars(with = "Option<CacheRefSchema>")]
    pub cache: Option<S<CacheRef>>,
    /// Header changes for this route, applied over the top-level ones.
    pub headers: Option<Headers>,
    /// CSP changes for this route: directives replace the top-level ones of the same name.
    pub csp: Option<Csp>,
    /// Pin this route to one origin, overriding deploy rules.
    #[schemars(with = "Option<String>")]
    pub origin: Option<S<String>>,
    /// Whether Next.js Server Actions (`Next-Action` requests) may be called here (default
    /// true); `false` answers them 403. Set it in [defaults] and allow them per route.
    #[schemars(with = "Option<bool>")]
    pub server_actions: Option<S<bool>>,
    /// What each bot category gets here: "allow", "deny" (403) or the name of a limit that
    /// counts it instead of the route's own. Categories: search_engine, monitor, ai_crawler,
    /// script, unknown. Merged over [defaults] category by category (docs/bots.md).
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub bots: Option<Map<S<String>>>,
    /// Serve only requests from these countries, continents or networks (`request.cf`); others,
    /// and requests without a location, → 403.
    pub geo_allow: Option<GeoDef>,
    /// Refuse requests from these countries, continents or networks with 403.
    pub geo_deny: Option<GeoDef>,
}

/// Countries, continents and networks, as Cloudflare reports them in `request.cf`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoDef {
    /// ISO 3166-1 alpha-2 codes, e.g. ["US", "CA"].
    #[schemars(with = "Option<Vec<String>>")]
    pub countries: Option<Vec<S<String>>>,
    /// Continent codes: AF, AN, AS, EU, NA, OC, SA.
    #[schemars(with = "Option<Vec<String>>")]
    pub continents: Option<Vec<S<String>>>,
    /// Autonomous system numbers, e.g. [13335].
    #[schemars(with = "Option<Vec<i64>>")]
    pub asns: Option<Vec<S<i64>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShieldMode {
    /// Suspend clients past the threshold.
    Enforce,
    /// Count and report what would be suspended, refuse nothing (the default).
    Shadow,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShieldDef {
    /// "shadow" (default: count and log, refuse nothing) or "enforce".
    #[schemars(with = "Option<ShieldMode>")]
    pub mode: Option<S<ShieldMode>>,
    /// Suspicious requests within `window` that suspend a client (default 5).
    #[schemars(with = "Option<i64>")]
    pub threshold: Option<S<i64>>,
    /// The counting window (default "1m").
    #[schemars(with = "Option<String>")]
    pub window: Option<S<String>>,
    /// How long a suspended client is refused (default "15m").
    #[schemars(with = "Option<String>")]
    pub cooldown: Option<S<String>>,
    /// The refusal's status: 403 (default) or 429.
    #[schemars(with = "Option<i64>")]
    pub status: Option<S<i64>>,
    /// More probe paths of this app's own: globs over the whole path, `*` matching anything.
    #[schemars(with = "Option<Vec<String>>")]
    pub paths: Option<Vec<S<String>>>,
    /// Signature families to turn off: secrets, admin_panels, server_scripts, backups,
    /// traversal, sql_injection, xss, code_injection, scanner.
    #[schemars(with = "Option<Vec<String>>")]
    pub ignore: Option<Vec<S<String>>>,
}

/// `[sessions.<name>]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionDef {
    /// Cookie holding the session (a glob; `.0`, `.1`… chunks are joined), e.g.
    /// "sb-*-auth-token" for Supabase.
    #[schemars(with = "Option<String>")]
    pub cookie: Option<S<String>>,
    /// Read `Authorization: Bearer <token>` too (default true; checked before the cookie).
    #[schemars(with = "Option<bool>")]
    pub bearer: Option<S<bool>>,
    /// JWKS URL for ES256/RS256 tokens (Supabase: https://<ref>.supabase.co/auth/v1/.well-known/jwks.json).
    #[schemars(with = "Option<String>")]
    pub jwks_url: Option<S<String>>,
    /// Name of the worker secret holding the HS256 key (e.g. "SUPABASE_JWT_SECRET").
    #[schemars(with = "Option<String>")]
    pub secret: Option<S<String>>,
    /// Accepted algorithms (default: HS256 with `secret`, ES256 and RS256 with `jwks_url`).
    #[schemars(with = "Option<Vec<String>>")]
    pub algorithms: Option<Vec<S<String>>>,
    /// Required `iss`.
    #[schemars(with = "Option<String>")]
    pub issuer: Option<S<String>>,
    /// Accepted `aud` value(s) (Supabase: "authenticated").
    #[schemars(with = "Option<ClaimValuesSchema>")]
    pub audience: Option<ClaimValues>,
    /// Clock skew allowed on `exp` and `nbf` (default "30s", at most "5m").
    #[schemars(with = "Option<String>")]
    pub leeway: Option<S<String>>,
    /// How long a fetched JWKS is used before it is fetched again (default "10m").
    #[schemars(with = "Option<String>")]
    pub jwks_cache: Option<S<String>>,
    /// An HS256 key for test tokens: `edgeguard test`, `explain --session` and the playground
    /// sign with it; the worker never accepts it.
    #[schemars(with = "Option<String>")]
    pub test_secret: Option<S<String>>,
}

/// One value or a list (`aud`, a claim's accepted values).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ClaimValues {
    One(String),
    Many(Vec<String>),
}

/// Schema-only mirror of [`ClaimValues`].
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ClaimValuesSchema {
    One(String),
    Many(Vec<String>),
}

/// A route's `require_session`.
#[derive(Debug)]
pub enum RequireSessionRef {
    Source(String),
    Table(RequireSessionDef),
}

/// By hand rather than `untagged`: the table's values keep their spans.
impl<'de> Deserialize<'de> for RequireSessionRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RequireSessionRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a session source name or a table { source, claims }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RequireSessionRef, E> {
                Ok(RequireSessionRef::Source(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RequireSessionRef, A::Error> {
                RequireSessionDef::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RequireSessionRef::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequireSessionDef {
    /// The `[sessions.<name>]` source (may be left out when there is one).
    #[schemars(with = "Option<String>")]
    pub source: Option<S<String>>,
    /// Claim path → accepted value(s): the session must have one of them.
    #[schemars(with = "Option<BTreeMap<String, ClaimValuesSchema>>")]
    pub claims: Option<Map<S<ClaimValues>>>,
}

/// Schema-only mirror of [`RequireSessionRef`].
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum RequireSessionSchema {
    Source(String),
    Table(RequireSessionDef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BlockValue {
    Flag(bool),
    Status(i64),
}

/// A limit by name or written inline.
#[derive(Debug)]
pub enum LimitRef {
    Named(String),
    Inline(Box<LimitDef>),
}

/// Schema-only mirror of [`LimitRef`].
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LimitRefSchema {
    Named(String),
    Inline(Box<LimitDef>),
}

/// A route's `cache`: a `Cache-Control` value, or the edge cache table.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheRef {
    Control(String),
    Edge(Box<CacheDef>),
}

/// Schema-only mirror of [`CacheRef`].
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CacheRefSchema {
    Control(String),
    Edge(CacheDef),
}

impl<'de> Deserialize<'de> for CacheRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CacheRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Cache-Control value or an edge cache table")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CacheRef, E> {
                Ok(CacheRef::Control(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<CacheRef, A::Error> {
                CacheDef::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|c| CacheRef::Edge(Box::new(c)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A route's edge cache: the Workers Cache API keeps its GET answers (docs/caching.md).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheDef {
    /// How long a stored answer is served without asking the origin ("1h"; default "0s":
    /// always ask, keep the copy for `stale_if_error`).
    #[schemars(with = "Option<String>")]
    pub edge: Option<S<String>>,
    /// How long past `edge` a stale copy is served while one refresh runs behind it.
    #[schemars(with = "Option<String>")]
    pub stale_while_revalidate: Option<S<String>>,
    /// How long past `edge` a stale copy stands in for an origin that fails.
    #[schemars(with = "Option<String>")]
    pub stale_if_error: Option<S<String>>,
    /// `Cache-Control` the client gets on successful answers (the string form of `cache`).
    #[schemars(with = "Option<String>")]
    pub control: Option<S<String>>,
    /// Also store and serve for requests that carry credentials (`[cache] personal_*`): only
    /// for answers identical for every user.
    #[schemars(with = "Option<bool>")]
    pub credentialed: Option<S<bool>>,
}

/// `[cache]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSettingsDef {
    /// Part of every cache key: change it to miss every stored copy (default "1").
    #[schemars(with = "Option<String>")]
    pub version: Option<S<String>>,
    /// Cookie names (globs) that make a request personal: never answered from or stored in
    /// the cache (default ["*"]: any cookie but the edge's lane cookie).
    #[schemars(with = "Option<Vec<String>>")]
    pub personal_cookies: Option<Vec<S<String>>>,
    /// Request headers that make a request personal besides `Authorization` and every API
    /// key header.
    #[schemars(with = "Option<Vec<String>>")]
    pub personal_headers: Option<Vec<S<String>>>,
}

/// `[fallback]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackDef {
    /// The page's HTML, inline.
    #[schemars(with = "Option<String>")]
    pub page: Option<S<String>>,
    /// The page's HTML in a file, relative to the policy.
    #[schemars(with = "Option<String>")]
    pub page_file: Option<S<String>>,
    /// `Retry-After` when the origin is down (default "1m").
    #[schemars(with = "Option<String>")]
    pub retry_after: Option<S<String>>,
}

/// `[maintenance]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceDef {
    /// Client addresses (CIDR) that still reach the app.
    #[schemars(with = "Option<Vec<String>>")]
    pub allow_ips: Option<Vec<S<String>>>,
    /// A request header whose value, equal to the worker secret `EDGE_MAINTENANCE_SECRET`,
    /// still reaches the app.
    #[schemars(with = "Option<String>")]
    pub bypass_header: Option<S<String>>,
    /// `Retry-After` of the maintenance answer (default "10m").
    #[schemars(with = "Option<String>")]
    pub retry_after: Option<S<String>>,
}

impl<'de> Deserialize<'de> for LimitRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LimitRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a limit name or an inline limit table")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LimitRef, E> {
                Ok(LimitRef::Named(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<LimitRef, A::Error> {
                LimitDef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|l| LimitRef::Inline(Box::new(l)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Counted per isolate.
    Local,
    /// Counted exactly fleet-wide in a Durable Object.
    Global,
    /// Cloudflare's Rate Limiting binding: cheap, per location, eventually consistent;
    /// windows of 10 s or 60 s only.
    Cloudflare,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Admit the request when the limiter cannot be asked (logged).
    Allow,
    /// Refuse it (429) when the limiter cannot be asked.
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitMode {
    Enforce,
    /// Count and report, never refuse.
    Shadow,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitDef {
    /// Requests per window, e.g. "100/15m" (GCRA: one request every 9 s sustained).
    #[schemars(with = "Option<String>")]
    pub rate: Option<S<String>>,
    /// Most requests allowed at once (default: the rate's count).
    #[schemars(with = "Option<i64>")]
    pub burst: Option<S<i64>>,
    /// "ip" | "header:<name>" | "cookie:<name>" | "ip+route" | "session:<claim>" (default "ip").
    #[schemars(with = "Option<String>")]
    pub key: Option<S<String>>,
    #[schemars(with = "Option<Scope>")]
    pub scope: Option<S<Scope>>,
    #[schemars(with = "Option<LimitMode>")]
    pub mode: Option<S<LimitMode>>,
    /// What a global or cloudflare limit does when its backend fails or times out (default allow).
    #[schemars(with = "Option<OnError>")]
    pub on_error: Option<S<OnError>>,
    /// Count only requests from these countries, continents or networks (`request.cf`); a
    /// request of unknown location is counted.
    pub geo: Option<GeoDef>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimiterDef {
    /// Most client keys one isolate tracks before evicting the stalest (default 100000).
    #[schemars(with = "Option<i64>")]
    pub max_keys: Option<S<i64>>,
    /// Durable Object shards that global limits are spread over (default 16).
    #[schemars(with = "Option<i64>")]
    pub global_shards: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyDef {
    /// Request header carrying the key (default "x-api-key").
    #[schemars(with = "Option<String>")]
    pub header: Option<S<String>>,
    /// SHA-256 hashes (64 hex characters) of the accepted keys; never the keys themselves.
    #[schemars(with = "Option<Vec<String>>")]
    pub sha256: Option<Vec<S<String>>>,
    /// Failed attempts at this key a client may make (default "10/1m", a rate as for limits);
    /// past it, its key attempts get 429 until it recovers. "off" counts none.
    #[schemars(with = "Option<String>")]
    pub failures: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginDef {
    /// Base URL of the origin, e.g. "https://quotekit-blue.fly.dev".
    #[schemars(with = "Option<String>")]
    pub url: Option<S<String>>,
    /// Give up on the origin after this long → 504 (default "30s").
    #[schemars(with = "Option<String>")]
    pub timeout: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The origin that takes traffic.
    #[schemars(with = "Option<String>")]
    pub active: Option<S<String>>,
    pub canary: Option<CanaryDef>,
    /// Cookie keeping a client on its lane (default "eg_lane").
    #[schemars(with = "Option<String>")]
    pub sticky_cookie: Option<S<String>>,
    /// GET, HEAD and OPTIONS retry once on the other origin on connect error or 5xx.
    #[schemars(with = "Option<bool>")]
    pub failover: Option<S<bool>>,
    /// Methods that fail over instead of the default GET, HEAD, OPTIONS; only idempotent
    /// methods (GET, HEAD, OPTIONS, PUT, DELETE) are allowed.
    #[schemars(with = "Option<Vec<String>>")]
    pub failover_methods: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryDef {
    #[schemars(with = "Option<String>")]
    pub origin: Option<S<String>>,
    /// Share of new clients sent to the canary, 0–100 (two decimals).
    #[schemars(with = "Option<f64>")]
    pub percent: Option<S<f64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Answered by the edge with application/health+json (default "/__edge/health").
    #[schemars(with = "Option<String>")]
    pub path: Option<S<String>>,
    /// Probed on each origin (default "/api/health").
    #[schemars(with = "Option<String>")]
    pub probe_path: Option<S<String>>,
    /// Probe timeout (default "2s").
    #[schemars(with = "Option<String>")]
    pub timeout: Option<S<String>>,
    /// How long a probe result is reused (default "10s").
    #[schemars(with = "Option<String>")]
    pub cache: Option<S<String>>,
    /// A probe answered slower than this turns that origin's check to `warn` (default
    /// "100ms"); more than zero and less than `timeout`.
    #[schemars(with = "Option<String>")]
    pub warn_after: Option<S<String>>,
}

/// The JSON Schema of the language, for editors.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Policy);
    schema.insert("title".into(), "edgeguard policy".into());
    schema.to_value()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// No request log lines.
    Off,
    /// Origin failures and origin 5xx answers.
    Error,
    /// Also edge refusals, shadowed requests and failovers.
    Warn,
    /// Every request (successful ones subject to `sample`).
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientIpDetail {
    /// IPv4 to its /24, IPv6 to its /48.
    Truncate,
    /// The whole address.
    Full,
    /// No address at all.
    Omit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostHogEvent {
    /// `edgeguard_refusal`: a request the edge refused (4xx).
    Refusal,
    /// `edgeguard_csp_violation`: one accepted, not duplicate CSP violation report.
    CspViolation,
    /// `edgeguard_origin_failure`: the origin timed out, was unreachable or answered 5xx.
    OriginFailure,
    /// `$pageview`: a forwarded GET answered 2xx with HTML, sampled by `pageview_sample`.
    Pageview,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observe {
    /// Which requests get a JSON log line: "off" | "error" | "warn" | "info" (default "info": every request).
    #[schemars(with = "Option<LogLevel>")]
    pub log: Option<S<LogLevel>>,
    /// Share (0–1) of successful requests logged (default 1); refusals and errors always are.
    #[schemars(with = "Option<f64>")]
    pub sample: Option<S<f64>>,
    /// Client address in logs, events and data points: "truncate" (default) | "full" | "omit".
    #[schemars(with = "Option<ClientIpDetail>")]
    pub client_ip: Option<S<ClientIpDetail>>,
    /// A Prometheus endpoint with this isolate's counters, protected by an `[api_keys]` entry.
    pub metrics: Option<MetricsDef>,
    /// Write a data point per request to the `EDGEGUARD_ANALYTICS` Analytics Engine binding when it is bound (default true).
    #[schemars(with = "Option<bool>")]
    pub analytics: Option<S<bool>>,
    /// Per-client limit on CSP reports, counted in the isolate: a `[limits]` name, an inline
    /// limit or "none" (default { rate = "20/2m", burst = 20 }).
    #[schemars(with = "Option<LimitRefSchema>")]
    pub csp_limit: Option<S<LimitRef>>,
    /// Drop a CSP report whose document, directive and blocked URL were reported this recently
    /// (default "10m"; "0s" keeps every report).
    #[schemars(with = "Option<String>")]
    pub csp_dedupe: Option<S<String>>,
    /// PostHog server-side capture (the project key is the worker secret `POSTHOG_KEY`).
    pub posthog: Option<PostHogDef>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsDef {
    /// Answered by the edge in Prometheus text format (default "/__edge/metrics").
    #[schemars(with = "Option<String>")]
    pub path: Option<S<String>>,
    /// Name of the `[api_keys.<name>]` entry a scraper must present (required).
    #[schemars(with = "Option<String>")]
    pub api_key: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostHogDef {
    /// PostHog's ingestion host, an https URL (default "https://us.i.posthog.com").
    #[schemars(with = "Option<String>")]
    pub host: Option<S<String>>,
    /// Events to send (default ["refusal", "csp_violation", "origin_failure"]).
    #[schemars(with = "Option<Vec<PostHogEvent>>")]
    pub events: Option<Vec<S<PostHogEvent>>>,
    /// Share (0–1) of page views sent as `$pageview` when "pageview" is listed (default 0.01).
    #[schemars(with = "Option<f64>")]
    pub pageview_sample: Option<S<f64>>,
    /// Most events one isolate sends per window (default "600/1m"); the rest are dropped and counted.
    #[schemars(with = "Option<String>")]
    pub rate: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsDef {
    /// Least time between two flushes of one isolate's numbers to the fleet object (default "5s", at least "1s").
    #[schemars(with = "Option<String>")]
    pub flush: Option<S<String>>,
    /// Length of the finest bucket (default "1m"); every window (retention, alert windows)
    /// counts in these. Tests shorten it ("500ms") to run the alert rules faster.
    #[schemars(with = "Option<String>")]
    pub minute: Option<S<String>>,
    /// Path of the fleet dashboard, guarded by `observe.metrics.api_key` (default
    /// "/__edge/dashboard"; `false`: none).
    #[schemars(with = "Option<DashboardSchema>")]
    pub dashboard: Option<S<DashboardDef>>,
}

/// `dashboard = "/path"` or `dashboard = false`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum DashboardDef {
    Path(String),
    On(bool),
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum DashboardSchema {
    Path(String),
    On(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LatencyOfDef {
    /// Time to the origin's response headers.
    Origin,
    /// Time spent in the edge itself.
    Edge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeverityDef {
    /// 14.4× over 1h and 5m, or 6× over 6h and 30m.
    Page,
    /// 1× over 3d and 6h.
    Ticket,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloDef {
    /// Route patterns (as written in `[[routes]] path`) whose requests count toward it.
    #[schemars(with = "Option<Vec<String>>")]
    pub routes: Option<Vec<S<String>>>,
    /// Percent of requests answered without a 5xx, e.g. 99.9.
    #[schemars(with = "Option<f64>")]
    pub availability: Option<S<f64>>,
    /// A latency objective: `{ percentile = 95, max = "200ms", of = "origin" }`.
    pub latency: Option<LatencyDef>,
    /// The window the error budget spans (default "30d").
    #[schemars(with = "Option<String>")]
    pub window: Option<S<String>>,
    /// Which burn-rate alerts it raises (default ["page", "ticket"]; [] for none).
    #[schemars(with = "Option<Vec<SeverityDef>>")]
    pub alerts: Option<Vec<S<SeverityDef>>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyDef {
    /// Which percentile of requests must be at most `max`: 50 to 99.99.
    #[schemars(with = "Option<f64>")]
    pub percentile: Option<S<f64>>,
    /// The threshold, e.g. "200ms".
    #[schemars(with = "Option<String>")]
    pub max: Option<S<String>>,
    /// Which time: "origin" (default) or "edge".
    #[schemars(with = "Option<LatencyOfDef>")]
    pub of: Option<S<LatencyOfDef>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsDef {
    /// Worker variable (a secret) holding a Slack incoming-webhook URL.
    #[schemars(with = "Option<String>")]
    pub slack: Option<S<String>>,
    /// Worker variable (a secret) holding a URL that receives the generic JSON body.
    #[schemars(with = "Option<String>")]
    pub webhook: Option<S<String>>,
    /// Worker variable (a secret) holding a bearer token sent to `webhook`.
    #[schemars(with = "Option<String>")]
    pub webhook_token: Option<S<String>>,
    /// Send an `edgeguard_alert` event to `[observe.posthog]` with the `POSTHOG_KEY` secret.
    #[schemars(with = "Option<bool>")]
    pub posthog: Option<S<bool>>,
}
