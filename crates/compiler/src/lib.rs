//! edgeguard's policy compiler: TOML → typed model → validation and lints → bundle.
//!
//! Every problem is reported in one run, each with a byte span, a stable code and a help line.
//! The same crate runs natively (CLI) and in wasm (playground).
//!
//! # Examples
//!
//! [`compile`] turns a policy into the bundle the engine runs, or into every problem at once:
//!
//! ```
//! use edgeguard_compiler::{Options, codes, compile};
//!
//! let policy = "version = 1\n[app]\nname = \"hello\"\n[origins.app]\nurl = \"https://hello.fly.dev\"\n";
//! let out = compile(policy, &Options::default());
//! assert!(!out.has_errors());
//! let bundle = out.bundle.expect("no errors, so a bundle");
//! assert_eq!(bundle.app.name, "hello");
//! assert_eq!(bundle.revision.len(), 64, "the SHA-256 of its bytes, in hex");
//!
//! // A misspelt key: no bundle, and a diagnostic with a stable code and a place.
//! let typo = policy.replace("[app]\nname", "[app]\nnmae");
//! let out = compile(&typo, &Options::default());
//! assert!(out.has_errors() && out.bundle.is_none());
//! let d = out.diagnostics.iter().find(|d| d.code == codes::UNKNOWN_KEY).expect("the unknown key is reported");
//! assert_eq!(typo.get(d.span.clone()), Some("nmae"));
//! assert_eq!((d.locate("policy.toml", &typo).line, d.locate("policy.toml", &typo).column), (3, 1));
//! ```

pub mod access;
pub mod bots;
pub mod cache;
pub mod codes;
pub mod csp;
pub mod diagnostics;
pub mod diff;
pub mod env;
pub mod geo;
pub mod headers;
pub mod health;
pub mod https;
pub mod limits;
pub mod model;
pub mod names;
pub mod observe;
pub mod origins;
pub mod routes;
pub mod sanitize;
pub mod sessions;
pub mod shape;
pub mod shield;
pub mod site;
pub mod slo;
pub mod units;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use core::ops::Range;

use diagnostics::Diagnostic;
use edgeguard_core::bundle::{self, App, HeaderSet, LimiterConfig, Route, method};
use edgeguard_core::routes::Matcher;
use edgeguard_core::Bundle;
use model::{BlockValue, Policy, Preset, Rules, S};
use serde::Deserialize;

/// Collects diagnostics while the compiler walks a policy.
#[derive(Debug, Default)]
pub struct Ctx {
    pub diags: Vec<Diagnostic>,
    /// Places of values an earlier phase reported and took out ("limits.api.rate",
    /// "routes[3].path"; "" for the whole document after a TOML syntax error).
    unread: Vec<String>,
}

impl Ctx {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// Note that the value at `path` was written but could not be read (already reported).
    pub fn mark_unread(&mut self, path: &str) {
        self.unread.push(path.to_owned());
    }

    /// Whether the value at `path`, a table holding it or a value inside it was written but
    /// could not be read. Findings that something there is missing or undefined would then
    /// be follow-ons of an error already reported, and are left out.
    pub fn unread(&self, path: &str) -> bool {
        let within = |outer: &str, inner: &str| {
            outer.is_empty() || inner.strip_prefix(outer).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        self.unread.iter().any(|p| within(p, path) || within(path, p))
    }
}

/// What to compile for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Environment to compile for; overrides `app.environment`.
    pub env: Option<String>,
    /// The policy file's directory, where `[fallback] page_file` is read; `None` (the
    /// playground, standard input) reads no file.
    pub base_dir: Option<std::path::PathBuf>,
}

/// The result of one compilation: all diagnostics, and a bundle when there was no error.
#[derive(Debug)]
pub struct Output {
    pub diagnostics: Vec<Diagnostic>,
    pub bundle: Option<Bundle>,
}

impl Output {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| !d.is_error()).count()
    }
}

/// Largest policy source accepted; real policies are a few KiB.
pub const MAX_SOURCE_BYTES: usize = 4 << 20;

/// Compile raw bytes (checks UTF-8 first).
///
/// # Examples
///
/// ```
/// use edgeguard_compiler::{Options, codes, compile_bytes};
///
/// let out = compile_bytes(b"version = 1\n\xff", &Options::default());
/// assert_eq!(out.diagnostics.len(), 1);
/// assert_eq!((out.diagnostics[0].code, out.diagnostics[0].span.clone()), (codes::INPUT, 12..13));
/// assert!(out.bundle.is_none());
/// ```
pub fn compile_bytes(bytes: &[u8], options: &Options) -> Output {
    match core::str::from_utf8(bytes) {
        Ok(source) => compile(source, options),
        Err(e) => {
            let at = e.valid_up_to();
            let d = Diagnostic::error(codes::INPUT, at..at.saturating_add(1), format!("the policy is not UTF-8 text (invalid byte at offset {at})"))
                .help("policies are TOML files in UTF-8");
            Output { diagnostics: vec![d], bundle: None }
        }
    }
}

fn schema() -> &'static shape::Shape {
    static SHAPE: OnceLock<shape::Shape> = OnceLock::new();
    SHAPE.get_or_init(|| shape::Shape::new(model::schema()))
}

/// Compile a policy source.
pub fn compile(source: &str, options: &Options) -> Output {
    let mut ctx = Ctx::default();
    let bundle = compile_into(&mut ctx, source, options).map(|compiled| {
        env::check_unblocked(&mut ctx, source, &compiled, options);
        compiled.bundle
    });
    let mut diagnostics = ctx.diags;
    diagnostics.sort_by_key(|d| (d.span.start, d.severity));
    Output { bundle: if diagnostics.iter().any(Diagnostic::is_error) { None } else { bundle }, diagnostics }
}

/// A bundle, and what [`env::check_unblocked`] compares across environments.
struct Compiled {
    bundle: Bundle,
    /// The policy's own environment: `app.environment`, or "production".
    own_env: String,
    /// Routes blocked in the policy's own environment but not in the compiled one.
    unblocked: Vec<env::Unblocked>,
}

/// Compile for one environment; [`compile`] adds the checks across environments.
fn compile_into(ctx: &mut Ctx, source: &str, options: &Options) -> Option<Compiled> {
    if source.len() > MAX_SOURCE_BYTES {
        ctx.push(
            Diagnostic::error(codes::INPUT, 0..0, format!("the policy is {} bytes; the limit is {MAX_SOURCE_BYTES}", source.len()))
                .help("a policy this large is almost certainly not a policy; check the file name"),
        );
        return None;
    }
    if source.trim().is_empty() {
        ctx.push(Diagnostic::error(codes::INPUT, 0..0, "the policy is empty").help("start with `edgeguard init --preset helmet`"));
        return None;
    }
    let (mut doc, errors) = toml::de::DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        let mut spans = Vec::with_capacity(errors.len());
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            ctx.push(Diagnostic::error(codes::SYNTAX, span.clone(), format!("TOML syntax: {}", e.message().trim())).help("see https://toml.io for the syntax"));
            spans.push(span);
        }
        // What the parser recovered is checked too, but a table it lost may define anything,
        // so nothing is reported missing or undefined.
        shape::drop_guessed(doc.get_mut(), &spans);
        ctx.mark_unread("");
    }
    let declared = env::declared(doc.get_ref());
    let own_env = declared.clone().unwrap_or_else(|| "production".to_owned());
    let env = options.env.clone().unwrap_or_else(|| own_env.clone());
    let overlays = env::overlay_names(doc.get_ref());
    // `--env prod` for a policy whose environments are production and staging compiles the base
    // policy under a name no `only_in`/`except_in` list uses: production-only blocks would not
    // apply. Said once, at the top: the name came from the command line, not the file.
    if options.env.is_some() && env != own_env && !overlays.contains(&env) {
        let mut names: Vec<&str> = vec![own_env.as_str()];
        names.extend(overlays.iter().map(String::as_str));
        let listed = names.join(", ");
        let help = match diagnostics::suggest(&env, names.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? this policy's environments: {listed}"),
            None => format!("this policy's environments: {listed}; add an [env.{env}] overlay to make it one"),
        };
        ctx.push(
            Diagnostic::warning(
                codes::UNKNOWN_TARGET_ENV,
                0..0,
                format!("compiling for environment `{env}`, which is neither app.environment (`{own_env}`) nor an [env.*] overlay: routes blocked `only_in` other environments are forwarded"),
            )
            .help(help),
        );
    }
    env::apply(doc.get_mut(), &env);
    schema().check(ctx, doc.get_mut());
    let policy = match Policy::deserialize(toml::de::Deserializer::from(doc)) {
        Ok(p) => p,
        Err(e) => {
            // The shape check takes out what serde would refuse; this is a safety net.
            let span = e.span().unwrap_or(0..0);
            ctx.push(Diagnostic::error(codes::WRONG_TYPE, span, e.message().trim().to_owned()).help("see docs/policy.md"));
            return None;
        }
    };
    let mut known_envs = overlays;
    known_envs.extend(declared);
    let mut unblocked = Vec::new();
    let bundle = lower(ctx, &policy, &env, &known_envs, &own_env, &mut unblocked, options.base_dir.as_deref())?;
    Some(Compiled { bundle, own_env, unblocked })
}

const DEFAULT_METHODS: u16 =
    method::GET | method::HEAD | method::POST | method::PUT | method::PATCH | method::DELETE | method::OPTIONS;

/// The rule fields shared by `[defaults]` and routes, resolved.
#[derive(Clone)]
struct Resolved {
    methods: u16,
    require_headers: Vec<String>,
    require_cookie: Option<edgeguard_core::glob::Glob>,
    require_session: Option<edgeguard_core::sessions::Requirement>,
    ip_allow: Vec<edgeguard_core::cidr::Cidr>,
    ip_deny: Vec<edgeguard_core::cidr::Cidr>,
    api_key: Option<u16>,
    max_body: Option<u64>,
    limit: Option<u16>,
    origin: Option<u16>,
    server_actions: bool,
    edge_cache: Option<edgeguard_core::cache::EdgeCache>,
    bots: edgeguard_core::bots::BotRules,
    geo_allow: Option<edgeguard_core::geo::GeoSet>,
    geo_deny: Option<edgeguard_core::geo::GeoSet>,
}

impl Resolved {
    /// What a rule is before `[defaults]`: the default methods, nothing required or limited.
    fn unrestricted() -> Resolved {
        Resolved {
            methods: DEFAULT_METHODS,
            require_headers: Vec::new(),
            require_cookie: None,
            require_session: None,
            ip_allow: Vec::new(),
            ip_deny: Vec::new(),
            api_key: None,
            max_body: None,
            limit: None,
            origin: None,
            server_actions: true,
            edge_cache: None,
            bots: edgeguard_core::bots::BotRules::default(),
            geo_allow: None,
            geo_deny: None,
        }
    }
}

struct Lowering<'a> {
    limits: limits::Limits,
    api_keys: names::Names,
    origins: names::Names,
    header_sets: Vec<HeaderSet>,
    /// Index of each distinct header set by its serialized form, so interning stays O(1) with
    /// thousands of routes that each customise headers.
    header_set_index: std::collections::HashMap<String, u16>,
    top_headers: headers::HeaderPlan,
    csp: csp::CspPlan,
    hsts: Option<String>,
    /// Every `report_to` path a CSP header of this policy sends reports to (the edge's intake).
    csp_report_paths: BTreeSet<String>,
    _policy: &'a Policy,
}

impl Lowering<'_> {
    /// Index of a header set, reusing an identical one.
    fn intern(&mut self, set: HeaderSet) -> u16 {
        let key = serde_json::to_string(&set).unwrap_or_default();
        if let Some(i) = self.header_set_index.get(&key) {
            return *i;
        }
        let index = u16::try_from(self.header_sets.len()).unwrap_or(u16::MAX);
        self.header_sets.push(set);
        self.header_set_index.insert(key, index);
        index
    }

    /// Header set for a chain of `headers`/`csp`/`cache` overrides (defaults, then route).
    fn header_set(&mut self, ctx: &mut Ctx, layers: &[&Rules]) -> u16 {
        let mut plan = self.top_headers.clone();
        let mut csp_plan = self.csp.clone();
        let mut cache_control = None;
        for layer in layers {
            if let Some(h) = &layer.headers {
                if let Some(p) = &h.preset {
                    ctx.push(
                        Diagnostic::error(codes::PRESET_IN_ROUTE, p.span(), "`preset` can only be chosen in the top-level [headers]")
                            .help("use `set`, `default` and `remove` to change headers for one route"),
                    );
                }
                plan.apply(ctx, h);
            }
            if let Some(c) = &layer.csp {
                csp_plan = csp::apply_override(ctx, &csp_plan, c);
            }
            let control = match layer.cache.as_ref().map(|c| (c.get_ref(), c.span())) {
                Some((model::CacheRef::Control(v), span)) => Some((v.clone(), span)),
                Some((model::CacheRef::Edge(def), _)) => def.control.as_ref().map(|c| (c.get_ref().clone(), c.span())),
                None => None,
            };
            if layer.cache.is_some() {
                // A route's `cache` replaces the defaults' whole: an edge table without `control`
                // keeps the origin's Cache-Control.
                cache_control = None;
            }
            if let Some((value, span)) = control
                && headers::validate_value(ctx, &value, span)
            {
                cache_control = Some(value);
            }
        }
        // The legacy policy goes to every response; with `strict = "nonce"` HTML pages get the
        // strict one instead (enforce) or beside it (report-only). A header in `remove` is not
        // sent, legacy or strict.
        let legacy = csp::header(&csp_plan).filter(|(name, _)| !plan.remove.contains(*name));
        let strict = csp::strict_header(&csp_plan).filter(|s| !plan.remove.contains(s.header.as_str()));
        if (legacy.is_some() || strict.is_some())
            && let Some(path) = csp_plan.report_to.as_deref().and_then(observe::report_path)
        {
            self.csp_report_paths.insert(path);
        }
        if let Some((name, value)) = legacy {
            plan.set.insert(name.to_owned(), value);
        }
        if let Some(endpoints) = csp::reporting_endpoints(&csp_plan) {
            plan.set.insert("reporting-endpoints".into(), endpoints);
        }
        let hsts = if plan.remove.contains("strict-transport-security") { None } else { self.hsts.clone() };
        let set = HeaderSet {
            set: plan.set.into_iter().collect(),
            default: plan.default.into_iter().collect(),
            remove: plan.remove.into_iter().collect(),
            hsts,
            cache: cache_control,
            strict,
        };
        self.intern(set)
    }

    /// Resolve the rule fields of one layer written at `at` ("defaults", "routes[3]") over `base`.
    fn resolve(&mut self, ctx: &mut Ctx, rules: &Rules, base: &Resolved, name: &str, at: &str) -> Resolved {
        let mut r = base.clone();
        if let Some(methods) = &rules.methods {
            let mut mask = 0u16;
            for m in methods {
                let bit = method::bit(m.get_ref());
                if bit == 0 {
                    let upper = m.get_ref().to_ascii_uppercase();
                    let help = if method::bit(&upper) != 0 {
                        format!("methods are case-sensitive: write \"{upper}\"")
                    } else {
                        "use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE or CONNECT".to_owned()
                    };
                    ctx.push(Diagnostic::error(codes::METHOD, m.span(), format!("`{}` is not an HTTP method", m.get_ref())).help(help));
                }
                mask |= bit;
            }
            if methods.is_empty() {
                ctx.push(
                    Diagnostic::error(codes::UNREACHABLE, rules.path.as_ref().map_or(0..0, |p| p.span()), "`methods = []` allows no method, so the route can never be reached")
                        .help("list the methods the route serves, or use `block` to refuse it"),
                );
            }
            r.methods = mask;
        }
        if let Some(allowed) = &rules.server_actions {
            r.server_actions = *allowed.get_ref();
        }
        if rules.require_headers.is_some() {
            r.require_headers = access::require_headers(ctx, rules.require_headers.as_ref());
        }
        if rules.require_cookie.is_some() {
            r.require_cookie = access::require_cookie(ctx, rules.require_cookie.as_ref());
        }
        if let Some(value) = &rules.require_session {
            r.require_session = sessions::requirement(ctx, &mut self.limits.sessions, value);
        }
        if rules.ip_allow.is_some() {
            r.ip_allow = access::cidrs(ctx, rules.ip_allow.as_ref());
        }
        if rules.ip_deny.is_some() {
            r.ip_deny = access::cidrs(ctx, rules.ip_deny.as_ref());
        }
        if let Some(k) = &rules.api_key {
            r.api_key = self.api_keys.lookup(ctx, k.get_ref(), k.span());
        }
        if let Some(size) = &rules.max_body {
            r.max_body = match units::size_bytes(size.get_ref()) {
                Ok(n) => Some(n),
                Err(e) => {
                    ctx.push(Diagnostic::error(codes::SIZE, size.span(), e).help(units::SIZE_HELP));
                    None
                }
            };
        }
        if let Some(l) = &rules.limit {
            r.limit = limits::resolve(ctx, &mut self.limits, l, name, &format!("{at}.limit"));
        }
        if let Some(o) = &rules.origin {
            r.origin = self.origins.lookup(ctx, o.get_ref(), o.span());
        }
        if let Some(table) = &rules.bots {
            r.bots = bots::resolve(ctx, table, &base.bots, &mut self.limits, &format!("{at}.bots"));
        }
        if let Some(g) = &rules.geo_allow {
            r.geo_allow = Some(geo::compile(ctx, g, &format!("{at}.geo_allow")));
        }
        if let Some(g) = &rules.geo_deny {
            r.geo_deny = Some(geo::compile(ctx, g, &format!("{at}.geo_deny")));
        }
        if let Some(c) = &rules.cache {
            let gated = r.api_key.is_some() || r.require_cookie.is_some() || r.require_session.is_some();
            r.edge_cache = match c.get_ref() {
                model::CacheRef::Control(_) => None,
                model::CacheRef::Edge(def) => cache::edge_rule(ctx, def, c.span(), gated),
            };
        }
        r
    }
}

/// Lower the policy compiled for `env`; routes blocked in `own_env` but not in `env` go to
/// `unblocked`.
fn lower(
    ctx: &mut Ctx,
    policy: &Policy,
    env: &str,
    overlays: &[String],
    own_env: &str,
    unblocked: &mut Vec<env::Unblocked>,
    base_dir: Option<&std::path::Path>,
) -> Option<Bundle> {
    let top: Range<usize> = 0..0;
    check_version(ctx, policy);
    let app = lower_app(ctx, policy, env);
    let client_ip = access::client_ip(ctx, policy.client_ip.as_ref());
    let sanitize = sanitize::compile(ctx, policy.sanitize.as_ref());
    let Headers { top_headers, https, hsts, csp_plan } = lower_headers(ctx, policy);
    let session_table = sessions::compile(ctx, &policy.sessions);
    let mut limit_table = limits::compile(ctx, &policy.limits, session_table);
    let max_keys = limits::max_keys(ctx, policy.limiter.as_ref());
    let global_shards = limits::global_shards(ctx, policy.limiter.as_ref());
    let (api_keys, api_key_names) = lower_api_keys(ctx, policy, &mut limit_table);
    let origins = origins::compile(ctx, &policy.origins, policy.deploy.as_ref(), top.clone());
    let cache_settings = cache::settings(ctx, policy.cache.as_ref(), api_keys.iter().map(|k: &edgeguard_core::bundle::ApiKey| k.header.clone()));
    let fallback = cache::fallback(ctx, policy.fallback.as_ref(), base_dir, top.clone());
    let maintenance = cache::maintenance(ctx, policy.maintenance.as_ref());
    let mut health = health::compile(ctx, policy.health.as_ref());
    let shield = shield::compile(ctx, policy.shield.as_ref());

    let mut lowering = Lowering {
        limits: limit_table,
        api_keys: api_key_names,
        origins: origins.names,
        header_sets: Vec::new(),
        header_set_index: std::collections::HashMap::new(),
        top_headers,
        csp: csp_plan,
        hsts,
        csp_report_paths: BTreeSet::new(),
        _policy: policy,
    };

    let base = Resolved::unrestricted();
    let empty = Rules::default();
    let defaults_rules = policy.defaults.as_ref().unwrap_or(&empty);
    check_route_only_keys(ctx, defaults_rules);
    let defaults_resolved = lowering.resolve(ctx, defaults_rules, &base, "defaults", "defaults");
    let defaults_headers = lowering.header_set(ctx, &[defaults_rules]);
    let defaults = to_route(None, &defaults_resolved, None, defaults_headers);
    if let Some(h) = health.as_mut() {
        h.headers = defaults_headers;
    }

    let known_envs: Vec<&str> = overlays.iter().map(String::as_str).chain([env]).collect();
    check_overlay_keys(ctx, policy);
    let inherited = Inherited { rules: defaults_rules, resolved: &defaults_resolved, headers: defaults_headers };
    let envs = Envs { env, own: own_env, known: &known_envs };
    let LoweredRoutes { regexes, patterns, routes } = lower_routes(ctx, &mut lowering, policy, &inherited, &envs, unblocked);
    let pattern_refs: Vec<&routes::Pattern> = patterns.iter().collect();
    let observe = observe::compile(
        ctx,
        policy.observe.as_ref(),
        &mut lowering.limits,
        &observe::Context {
            csp_paths: &lowering.csp_report_paths,
            api_keys: &lowering.api_keys,
            health_path: health.as_ref().map(|h| h.path.as_str()),
            headers: defaults_headers,
        },
    );
    let mut reserved: Vec<(String, &str)> = health.iter().map(|h| (h.path.clone(), "the edge's health endpoint")).collect();
    reserved.extend(observe::reserved(&observe));
    let route_patterns: Vec<String> = routes.iter().filter_map(|r: &edgeguard_core::bundle::Route| r.pattern.clone()).collect();
    let operate = slo::compile(
        ctx,
        policy,
        &slo::Context { routes: &route_patterns, metrics: observe.metrics.as_ref(), taken: &reserved, posthog: observe.posthog.as_ref().map(|p| p.host.as_str()) },
    );
    reserved.extend(slo::reserved(&operate.stats));
    routes::check_conflicts(ctx, &pattern_refs, &regexes, &reserved);

    if ctx.has_errors() {
        return None;
    }
    let mut matcher = Matcher { regexes, ..Matcher::default() };
    for (i, p) in patterns.iter().enumerate() {
        matcher.insert(&p.segments, u32::try_from(i).ok()?);
    }
    let mut bundle = Bundle {
        revision: String::new(),
        app,
        client_ip,
        sanitize,
        https,
        header_sets: lowering.header_sets,
        routes,
        defaults,
        matcher,
        limits: lowering.limits.table,
        sessions: lowering.limits.sessions.sources,
        limiter: LimiterConfig { max_keys, global_shards },
        api_keys,
        origins: origins.table,
        deploy: origins.deploy,
        health,
        observe,
        cache: cache_settings,
        fallback,
        maintenance,
        stats: operate.stats,
        slos: operate.slos,
        alerts: operate.alerts,
        shield,
    };
    // The revision names the compiled bytes, environment overlay included: staging and
    // production differ, and a comment-only edit of the source keeps the revision.
    bundle.revision = bundle.digest_hex().ok()?;
    Some(bundle)
}

/// The site-wide response headers: the preset with `[headers]` applied, HTTPS and HSTS, and
/// the CSP (linted here, as a whole).
struct Headers {
    top_headers: headers::HeaderPlan,
    https: bundle::Https,
    hsts: Option<String>,
    csp_plan: csp::CspPlan,
}

/// `[headers]`, `[https]` and `[csp]`; findings without a place of their own point at the
/// preset.
fn lower_headers(ctx: &mut Ctx, policy: &Policy) -> Headers {
    let preset_value = policy.headers.as_ref().and_then(|h| h.preset.as_ref());
    let preset = preset_value.map_or(Preset::Helmet, |p| *p.get_ref());
    let preset_span = preset_value.map_or(0..0, |p| p.span());
    let mut top_headers = headers::HeaderPlan::preset(preset);
    if let Some(h) = &policy.headers {
        top_headers.apply(ctx, h);
    }
    let (https, hsts) = https::compile(ctx, policy.https.as_ref(), preset, preset_span.clone());
    let csp_plan = csp::compile(ctx, policy.csp.as_ref(), preset);
    // Findings about the policy as a whole (report-only, missing directives in a preset CSP)
    // point at `csp.mode` when written, else at the preset that supplied the CSP.
    let csp_span = policy.csp.as_ref().and_then(|c| c.mode.as_ref()).map_or(preset_span, |m| m.span());
    // The lints judge the CSP as a whole; with a value of it taken out they would judge another.
    if !ctx.unread("csp") && !ctx.unread("headers.preset") {
        csp::lint(ctx, &csp_plan, csp_span);
    }
    Headers { top_headers, https, hsts, csp_plan }
}

/// What each route starts from: `[defaults]` as written, resolved, and its header set.
struct Inherited<'r> {
    rules: &'r Rules,
    resolved: &'r Resolved,
    headers: u16,
}

/// The environment compiled for, the policy's own, and every one the policy names.
struct Envs<'e> {
    env: &'e str,
    own: &'e str,
    known: &'e [&'e str],
}

/// The `[[routes]]` compiled, in written order: the regexes their parameters use, their
/// patterns and the routes (a route without a `path` is checked but has neither).
struct LoweredRoutes {
    regexes: Vec<String>,
    patterns: Vec<routes::Pattern>,
    routes: Vec<Route>,
}

/// Every `[[routes]]` entry on top of `[defaults]`; routes blocked in the policy's own
/// environment but not in the one compiled for go to `unblocked`.
fn lower_routes(ctx: &mut Ctx, lowering: &mut Lowering<'_>, policy: &Policy, inherited: &Inherited<'_>, envs: &Envs<'_>, unblocked: &mut Vec<env::Unblocked>) -> LoweredRoutes {
    let mut regexes = Vec::new();
    let mut patterns = Vec::new();
    let mut routes = Vec::new();
    for (i, rules) in policy.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        let pattern = match &rules.path {
            Some(path) => routes::parse(ctx, path, rules.params.as_ref(), &mut regexes),
            None => {
                if !ctx.unread(&format!("{at}.path")) {
                    ctx.push(Diagnostic::error(codes::MISSING, 0..0, "a [[routes]] entry has no `path`").help("add path = \"/api/…\""));
                }
                None
            }
        };
        // Without a path the route is still checked, but never compiled.
        let name = rules.path.as_ref().map_or(at.as_str(), |p| p.get_ref().as_str());
        let resolved = lowering.resolve(ctx, rules, inherited.resolved, name, &at);
        let block = lower_block(ctx, rules, envs.known, &at);
        let blocked = block.as_ref().filter(|b| b.applies_in(envs.env)).map(|b| b.status);
        let customised = rules.headers.is_some() || rules.csp.is_some() || rules.cache.is_some();
        let header_index = if customised { lowering.header_set(ctx, &[inherited.rules, rules]) } else { inherited.headers };
        if let Some(p) = pattern {
            if blocked.is_none() && block.is_some_and(|b| b.applies_in(envs.own)) {
                let gate = match (rules.only_in.as_ref().and_then(|l| l.first()), rules.except_in.as_ref().and_then(|l| l.first())) {
                    (Some(e), _) => (e.span(), "blocked only in the environments listed here"),
                    (None, e) => (e.map_or(0..0, |e| e.span()), "not blocked in the environments listed here"),
                };
                unblocked.push(env::Unblocked { route: routes.len(), span: p.span.clone(), gate });
            }
            routes.push(to_route(Some(p.canonical.clone()), &resolved, blocked, header_index));
            patterns.push(p);
        }
    }
    LoweredRoutes { regexes, patterns, routes }
}

/// `version = 1`: a warning when missing, an error for another version.
fn check_version(ctx: &mut Ctx, policy: &Policy) {
    match &policy.version {
        None if ctx.unread("version") => {}
        None => ctx.push(Diagnostic::warning(codes::NO_VERSION, 0..0, "the policy does not say which language version it uses").help("add `version = 1` at the top")),
        Some(v) if *v.get_ref() != 1 => ctx.push(
            Diagnostic::error(codes::VERSION, v.span(), format!("language version {} is not supported", v.get_ref())).help("this edgeguard reads version = 1"),
        ),
        Some(_) => {}
    }
}

/// `[api_keys.*]` in written order, and their names for routes to refer to.
fn lower_api_keys(ctx: &mut Ctx, policy: &Policy, limit_table: &mut limits::Limits) -> (Vec<bundle::ApiKey>, names::Names) {
    let mut api_keys = Vec::new();
    let mut api_key_names = names::Names::new("api_keys", "api key", codes::UNDEFINED_API_KEY, " with header and sha256");
    for (name, def) in &policy.api_keys {
        let index = access::api_key(ctx, name, def, limit_table).and_then(|k| {
            let index = u16::try_from(api_keys.len()).ok()?;
            api_keys.push(k);
            Some(index)
        });
        api_key_names.define(name.get_ref(), index);
    }
    (api_keys, api_key_names)
}

/// The keys only a route can have, written in `[defaults]`.
fn check_route_only_keys(ctx: &mut Ctx, defaults_rules: &Rules) {
    for (key, span) in [
        ("path", defaults_rules.path.as_ref().map(|v| v.span())),
        ("block", defaults_rules.block.as_ref().map(|v| v.span())),
        ("only_in", defaults_rules.only_in.as_ref().and_then(|v| v.first()).map(|v| v.span())),
        ("except_in", defaults_rules.except_in.as_ref().and_then(|v| v.first()).map(|v| v.span())),
        ("params", defaults_rules.params.as_ref().and_then(|m| m.keys().next()).map(|k| k.span())),
    ] {
        if let Some(span) = span {
            ctx.push(
                Diagnostic::error(codes::NOT_IN_DEFAULTS, span, format!("`{key}` belongs on a route, not in [defaults]"))
                    .help("write it in a [[routes]] entry"),
            );
        }
    }
}

/// `version` and `env` written inside an `[env.*]` overlay.
fn check_overlay_keys(ctx: &mut Ctx, policy: &Policy) {
    for (name, overlay) in &policy.env {
        let nested = [
            ("version", overlay.version.as_ref().map(|v| v.span())),
            ("env", overlay.env.keys().next().map(|k| k.span())),
        ];
        for (key, span) in nested {
            if let Some(span) = span {
                ctx.push(
                    Diagnostic::error(codes::UNKNOWN_KEY, span, format!("`{key}` cannot be set inside the overlay [env.{}]", name.get_ref()))
                        .help(format!("set `{key}` at the top level")),
                );
            }
        }
    }
}

fn to_route(pattern: Option<String>, r: &Resolved, block: Option<u16>, headers: u16) -> Route {
    Route {
        pattern,
        methods: r.methods,
        block,
        require_headers: r.require_headers.clone(),
        require_cookie: r.require_cookie.clone(),
        ip_allow: r.ip_allow.clone(),
        ip_deny: r.ip_deny.clone(),
        api_key: r.api_key,
        max_body: r.max_body,
        limit: r.limit,
        headers,
        origin: r.origin,
        server_actions: r.server_actions,
        edge_cache: r.edge_cache,
        require_session: r.require_session.clone(),
        bots: r.bots.clone(),
        geo_allow: r.geo_allow.clone(),
        geo_deny: r.geo_deny.clone(),
    }
}

fn lower_app(ctx: &mut Ctx, policy: &Policy, env: &str) -> App {
    let app = policy.app.as_ref();
    let mut hosts = Vec::new();
    for h in app.and_then(|a| a.hosts.as_ref()).into_iter().flatten() {
        match edgeguard_core::sanitize::normalize_host(h.get_ref()) {
            Some(n) if !h.get_ref().contains(':') || h.get_ref().starts_with('[') => hosts.push(n),
            _ => ctx.push(
                Diagnostic::error(codes::HOST, h.span(), format!("`{}` is not a host name", h.get_ref()))
                    .help("write the bare host, e.g. \"lawnquote.online\" (no scheme, port or path)"),
            ),
        }
    }
    // A host reported above may be the one canonical_host names.
    let hosts_invalid = hosts.len() < app.and_then(|a| a.hosts.as_ref()).map_or(0, Vec::len);
    let canonical_host = app.and_then(|a| a.canonical_host.as_ref()).and_then(|c| {
        let n = edgeguard_core::sanitize::normalize_host(c.get_ref());
        match n {
            Some(n) if hosts.is_empty() || hosts.contains(&n) || hosts_invalid => Some(n),
            Some(n) => {
                ctx.push(
                    Diagnostic::error(codes::HOST, c.span(), format!("canonical_host `{n}` is not one of app.hosts, so the redirect target would answer 421"))
                        .help("add it to app.hosts"),
                );
                None
            }
            None => {
                ctx.push(Diagnostic::error(codes::HOST, c.span(), format!("`{}` is not a host name", c.get_ref())).help("write the bare host"));
                None
            }
        }
    });
    App {
        name: app.and_then(|a| a.name.as_ref()).map_or_else(|| "app".to_owned(), |n| n.get_ref().clone()),
        environment: env.to_owned(),
        hosts,
        canonical_host,
    }
}

/// A route's `block`: the status, and where it applies (`only_in`/`except_in`).
struct Block {
    status: u16,
    only_in: Option<Vec<String>>,
    except_in: Option<Vec<String>>,
}

impl Block {
    fn applies_in(&self, env: &str) -> bool {
        match (&self.only_in, &self.except_in) {
            (Some(list), _) => list.iter().any(|e| e == env),
            (None, Some(list)) => !list.iter().any(|e| e == env),
            (None, None) => true,
        }
    }
}

/// The `block` of the route written at `at`, checked.
fn lower_block(ctx: &mut Ctx, rules: &Rules, known: &[&str], at: &str) -> Option<Block> {
    let status = match rules.block.as_ref().map(|b| (*b.get_ref(), b.span())) {
        None | Some((BlockValue::Flag(false), _)) => None,
        Some((BlockValue::Flag(true), _)) => Some(404),
        Some((BlockValue::Status(n), span)) => match u16::try_from(n) {
            Ok(s) if (400..=599).contains(&s) => Some(s),
            _ => {
                ctx.push(Diagnostic::error(codes::BLOCK, span, format!("block status {n} is not a 4xx or 5xx status")).help("use 404 to hide a route, 403 to refuse it, or `true` for 404"));
                None
            }
        },
    };
    let env_list = |list: &Option<Vec<S<String>>>, ctx: &mut Ctx| -> Option<Vec<String>> {
        let list = list.as_ref()?;
        for e in list {
            if !known.contains(&e.get_ref().as_str()) {
                let mut d = Diagnostic::warning(codes::UNKNOWN_ENV, e.span(), format!("environment `{}` is neither app.environment nor an [env.*] overlay", e.get_ref()));
                d = match diagnostics::suggest(e.get_ref(), known.iter().copied()) {
                    Some(best) => d.help(format!("did you mean `{best}`? a misspelt environment silently never matches")),
                    None => d.help("a misspelt environment silently never matches"),
                };
                ctx.push(d);
            }
        }
        Some(list.iter().map(|e| e.get_ref().clone()).collect())
    };
    let only_in = env_list(&rules.only_in, ctx);
    let except_in = env_list(&rules.except_in, ctx);
    if (only_in.is_some() || except_in.is_some()) && rules.block.is_none() && !ctx.unread(&format!("{at}.block")) {
        let span = rules.only_in.iter().chain(rules.except_in.iter()).flatten().next().map_or(0..0, |s| s.span());
        ctx.push(Diagnostic::error(codes::BLOCK, span, "`only_in`/`except_in` choose where `block` applies, but this route has no `block`").help("add block = 404"));
    }
    if only_in.is_some() && except_in.is_some() {
        let span = rules.except_in.iter().flatten().next().map_or(0..0, |s| s.span());
        ctx.push(Diagnostic::error(codes::BLOCK, span, "use either `only_in` or `except_in`, not both").help("keep the one that reads naturally"));
    }
    status.map(|status| Block { status, only_in, except_in })
}

/// Re-exported so shells and tests can name bundle types through the compiler.
pub use bundle::FORMAT_VERSION;

#[cfg(test)]
mod tests {
    use super::Ctx;

    #[test]
    fn unread_covers_the_place_its_tables_and_its_values() {
        let mut ctx = Ctx::default();
        ctx.mark_unread("routes[1].limit");
        for (path, unread) in [
            ("routes[1].limit", true),
            ("routes[1].limit.rate", true),
            ("routes[1]", true),
            ("routes", true),
            ("routes[1].path", false),
            ("routes[10].limit", false),
            ("routes[1].limits", false),
            ("limits", false),
        ] {
            assert_eq!(ctx.unread(path), unread, "{path}");
        }
        ctx.mark_unread("");
        assert!(ctx.unread("version"), "a syntax error leaves the whole document unread");
    }
}
