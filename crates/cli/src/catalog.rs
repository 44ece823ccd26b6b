//! The environment catalog: every variable an app needs, where it lives, which environments
//! need it and what its value must look like (docs/env-catalog.md). A TOML file kept beside the
//! policy; `doctor --catalog` checks deployment inputs against it ([`crate::envcheck`]) and
//! `ready` reports the result as a gate.
//!
//! The file is checked the way a policy is: its JSON Schema (derived from the structs below,
//! `edgeguard schema --catalog`) catches unknown keys, wrong types and bad enum words, then the
//! rules below; every problem is reported at once with its span, a stable code (`C0xx`) and a
//! help line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use core::ops::Range;

use edgeguard_compiler::Ctx;
use edgeguard_compiler::codes as policy_codes;
use edgeguard_compiler::diagnostics::Diagnostic;
use edgeguard_compiler::shape::Shape;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::Failure;

type S<T> = Spanned<T>;

/// Stable catalog codes (docs/env-catalog.md); never reused for another meaning.
pub mod codes {
    pub const SYNTAX: &str = "C001";
    pub const UNKNOWN_KEY: &str = "C002";
    pub const WRONG_TYPE: &str = "C003";
    pub const BAD_ENUM: &str = "C004";
    pub const MISSING: &str = "C005";
    pub const VERSION: &str = "C006";
    pub const NAME: &str = "C010";
    pub const UNKNOWN_ENV: &str = "C011";
    pub const PUBLIC_NOT_BUILD: &str = "C012";
    pub const PUBLIC_SECRET: &str = "C013";
    pub const PLAIN_SECRET: &str = "C014";
    pub const PATTERN: &str = "C015";
    pub const NO_ENVIRONMENTS: &str = "C016";
    pub const MIRRORS: &str = "C017";
    pub const SCHEME: &str = "C018";
}

/// An environment catalog (version 1).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Catalog version; only 1 exists.
    #[schemars(with = "Option<i64>")]
    pub version: Option<S<i64>>,
    /// The deployment environments (`production`, `staging`, …), by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, EnvDef>")]
    pub environments: BTreeMap<S<String>, EnvDef>,
    /// The app's variables, by name (`STRIPE_SECRET_KEY`, `NEXT_PUBLIC_SITE_URL`, …).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, VarDef>")]
    pub vars: BTreeMap<S<String>, VarDef>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvDef {
    /// `true`: live keys belong here and test keys do not (production); `false`: the reverse
    /// (staging, preview). Unset: either is accepted.
    pub live: Option<bool>,
    /// Another environment this one must match, variable for variable (staging mirrors
    /// production): a variable one has and the other lacks is a parity finding (D056) unless
    /// the catalog declares it for one environment only.
    #[schemars(with = "Option<String>")]
    pub mirrors: Option<S<String>>,
}

/// Where a variable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `fly secrets set NAME=…`: encrypted, read by the app at run time.
    FlySecret,
    /// fly.toml `[env]`: plain text in the repository, read by the app at run time.
    FlyEnv,
    /// A build argument (fly.toml `[build.args]`, `--build-arg`): inlined into the build.
    /// Every `NEXT_PUBLIC_*` variable is one: Next.js inlines them into the browser bundle.
    Build,
    /// wrangler.toml `[vars]`: plain text, read by the edge worker.
    WorkerVar,
    /// `wrangler secret put NAME`: encrypted, read by the edge worker.
    WorkerSecret,
}

impl Source {
    pub fn word(self) -> &'static str {
        match self {
            Source::FlySecret => "fly-secret",
            Source::FlyEnv => "fly-env",
            Source::Build => "build",
            Source::WorkerVar => "worker-var",
            Source::WorkerSecret => "worker-secret",
        }
    }

    /// Where to put it, for fixes.
    pub fn how(self, name: &str) -> String {
        match self {
            Source::FlySecret => format!("`fly secrets set {name}=…`"),
            Source::FlyEnv => format!("fly.toml [env] {name} = \"…\""),
            Source::Build => format!("fly.toml [build.args] {name} = \"…\" (or `fly deploy --build-arg {name}=…`)"),
            Source::WorkerVar => format!("wrangler.toml [vars] {name} = \"…\""),
            Source::WorkerSecret => format!("`wrangler secret put {name}`"),
        }
    }

    /// Whether values kept here are encrypted (and so may be secrets).
    pub fn encrypted(self) -> bool {
        matches!(self, Source::FlySecret | Source::WorkerSecret)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VarDef {
    /// What it is for: documentation for the people who keep the catalog; never checked.
    #[allow(dead_code, reason = "read by serde so the key is accepted; a note for readers")]
    pub description: Option<String>,
    /// Where it lives: "fly-secret", "fly-env", "build", "worker-var" or "worker-secret".
    #[schemars(with = "Option<Source>")]
    pub source: Option<S<Source>>,
    /// The environments that have it; all of `[environments]` when absent.
    #[schemars(with = "Option<Vec<String>>")]
    pub environments: Option<Vec<S<String>>>,
    /// `true`: may be absent (checked when present).
    pub optional: Option<bool>,
    /// Whether the value is a secret. Defaults to `true` for fly-secret and worker-secret,
    /// `false` otherwise; `true` is refused for plain-text sources and `NEXT_PUBLIC_*`.
    #[schemars(with = "Option<bool>")]
    pub secret: Option<S<bool>>,
    /// `true`: the value must differ between every two environments (compared without being
    /// printed: values in .env files, digests in `fly secrets list --json`).
    pub distinct: Option<bool>,
    /// The value is a URL.
    pub url: Option<UrlDef>,
    /// The value starts with one of these (`phc_`, `re_`, `whsec_`).
    pub prefix: Option<OneOrMany>,
    /// Prefixes of live keys (`sk_live_`): refused in an environment with `live = false`.
    pub live_prefix: Option<OneOrMany>,
    /// Prefixes of test keys (`sk_test_`): refused in an environment with `live = true`.
    pub test_prefix: Option<OneOrMany>,
    /// A regular expression the whole value must match (Rust `regex` syntax, anchored).
    #[schemars(with = "Option<String>")]
    pub pattern: Option<S<String>>,
    /// The values allowed: a list for every environment, or a table of lists by environment.
    #[serde(rename = "enum")]
    pub one_of: Option<PerEnv<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlDef {
    /// Allowed schemes; `["https"]` when absent.
    #[schemars(with = "Option<Vec<String>>")]
    pub scheme: Option<Vec<S<String>>>,
    /// The required host: one for every environment, or a table by environment. `"canonical"`
    /// is the policy's `app.canonical_host` (or its only host) compiled for that environment.
    pub host: Option<PerEnv<String>>,
}

/// One value, or a list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A value for every environment, or a table of values by environment name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PerEnv<T> {
    All(T),
    ByEnv(BTreeMap<String, T>),
}

impl<T> PerEnv<T> {
    /// The value for `env`: the one for all, or that environment's (none when it has none).
    pub fn get(&self, env: &str) -> Option<&T> {
        match self {
            PerEnv::All(v) => Some(v),
            PerEnv::ByEnv(m) => m.get(env),
        }
    }
}

/// The catalog's JSON Schema (`edgeguard schema --catalog`).
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(CatalogFile);
    schema.insert("title".into(), "edgeguard environment catalog".into());
    schema.to_value()
}

fn shape() -> &'static Shape {
    static SHAPE: OnceLock<Shape> = OnceLock::new();
    SHAPE.get_or_init(|| Shape::new(schema()))
}

/// One environment, resolved.
#[derive(Debug, Clone)]
pub struct Env {
    pub name: String,
    pub live: Option<bool>,
    pub mirrors: Option<String>,
    pub line: usize,
}

/// One variable, resolved.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub line: usize,
    pub source: Source,
    /// The environments that have it.
    pub envs: Vec<String>,
    pub optional: bool,
    pub secret: bool,
    pub distinct: bool,
    /// Allowed URL schemes when the value is a URL.
    pub url_schemes: Option<Vec<String>>,
    pub url_host: Option<PerEnv<String>>,
    pub prefixes: Vec<String>,
    pub live_prefixes: Vec<String>,
    pub test_prefixes: Vec<String>,
    pub pattern: Option<(String, regex_lite::Regex)>,
    pub one_of: Option<PerEnv<Vec<String>>>,
}

impl Var {
    /// Required (not optional) in `env`.
    pub fn required_in(&self, env: &str) -> bool {
        !self.optional && self.envs.iter().any(|e| e == env)
    }

    pub fn belongs_to(&self, env: &str) -> bool {
        self.envs.iter().any(|e| e == env)
    }
}

/// A catalog that passed its checks.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub file: String,
    pub envs: Vec<Env>,
    pub vars: Vec<Var>,
}

impl Catalog {
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }

    pub fn env(&self, name: &str) -> Option<&Env> {
        self.envs.iter().find(|e| e.name == name)
    }
}

/// A catalog file read and checked: its diagnostics, and the catalog when there was no error.
pub struct Loaded {
    pub file: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
    pub catalog: Option<Catalog>,
}

/// Read and check a catalog file. Unreadable: a usage error; anything else is a diagnostic.
pub fn load(path: &Path) -> Result<Loaded, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))?;
    let file = path.display().to_string();
    let source = String::from_utf8_lossy(&bytes).into_owned();
    let (diagnostics, catalog) = match core::str::from_utf8(&bytes) {
        Ok(text) => check(&file, text),
        Err(e) => {
            let at = e.valid_up_to();
            (vec![Diagnostic::error(codes::SYNTAX, at..at.saturating_add(1), "the catalog is not UTF-8 text").help("catalogs are TOML files in UTF-8")], None)
        }
    };
    Ok(Loaded { file, source, diagnostics, catalog })
}

/// Check a catalog's text: every diagnostic, and the catalog when none is an error.
pub fn check(file: &str, source: &str) -> (Vec<Diagnostic>, Option<Catalog>) {
    let mut ctx = Ctx::default();
    let (mut doc, errors) = DeTable::parse_recoverable(source);
    let mut guessed = Vec::new();
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        ctx.push(Diagnostic::error(codes::SYNTAX, span.clone(), format!("TOML syntax: {}", e.message().trim())).help("see https://toml.io for the syntax"));
        guessed.push(span);
    }
    // What the parser guessed around a syntax error is not checked (as for a policy).
    edgeguard_compiler::shape::drop_guessed(doc.get_mut(), &guessed);
    let spans_doc = doc.get_ref().clone();
    shape().check(&mut ctx, doc.get_mut());
    let mut diags: Vec<Diagnostic> = ctx.diags.into_iter().map(recode).collect();
    let parsed = if errors.is_empty() {
        match CatalogFile::deserialize(toml::de::Deserializer::from(doc)) {
            Ok(c) => Some(c),
            Err(e) => {
                diags.push(Diagnostic::error(codes::WRONG_TYPE, e.span().unwrap_or(0..0), e.message().trim().to_owned()).help("see docs/env-catalog.md"));
                None
            }
        }
    } else {
        None
    };
    let catalog = parsed.and_then(|c| resolve(file, source, &spans_doc, c, &mut diags));
    diags.sort_by_key(|d| (d.span.start, d.severity));
    let ok = !diags.iter().any(Diagnostic::is_error);
    (diags, catalog.filter(|_| ok))
}

/// The shape check's policy codes as catalog codes, its help pointing at the catalog's docs.
fn recode(mut d: Diagnostic) -> Diagnostic {
    d.code = match d.code {
        c if c == policy_codes::UNKNOWN_KEY => codes::UNKNOWN_KEY,
        c if c == policy_codes::BAD_ENUM => codes::BAD_ENUM,
        c if c == policy_codes::WRONG_TYPE => codes::WRONG_TYPE,
        other => other,
    };
    d.help = d.help.map(|h| h.replace("docs/policy.md", "docs/env-catalog.md"));
    d
}

/// The span of the value at a key path, or the document start.
fn span_at(doc: &DeTable<'_>, keys: &[&str]) -> Range<usize> {
    let mut table = doc;
    let mut span = 0..0;
    for (i, key) in keys.iter().enumerate() {
        let Some(v) = table.get(*key) else { break };
        span = v.span();
        match v.get_ref() {
            DeValue::Table(t) if i.saturating_add(1) < keys.len() => table = t,
            _ => break,
        }
    }
    span
}

/// The span of a key itself (its name), for "unknown environment" in a by-environment table.
fn key_span(doc: &DeTable<'_>, keys: &[&str], key: &str) -> Range<usize> {
    let mut table = doc;
    for k in keys {
        match table.get(*k).map(Spanned::get_ref) {
            Some(DeValue::Table(t)) => table = t,
            _ => return span_at(doc, keys),
        }
    }
    table.iter().find(|(k, _)| k.get_ref() == key).map_or_else(|| span_at(doc, keys), |(k, _)| k.span())
}

pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The rules the schema cannot say, and the resolved catalog.
fn resolve(file: &str, source: &str, doc: &DeTable<'_>, c: CatalogFile, diags: &mut Vec<Diagnostic>) -> Option<Catalog> {
    match &c.version {
        None => diags.push(Diagnostic::error(codes::MISSING, 0..0, "the catalog has no `version`").help("start the file with `version = 1`")),
        Some(v) if *v.get_ref() != 1 => diags.push(Diagnostic::error(codes::VERSION, v.span(), format!("catalog version {} is not supported", v.get_ref())).help("this edgeguard reads `version = 1`")),
        Some(_) => {}
    }
    let env_names: Vec<String> = c.environments.keys().map(|k| k.get_ref().clone()).collect();
    if env_names.is_empty() {
        diags.push(Diagnostic::error(codes::NO_ENVIRONMENTS, 0..0, "the catalog declares no environment").help("add `[environments.production]` (and `[environments.staging]`, …)"));
    }
    let unknown_env = |diags: &mut Vec<Diagnostic>, span: Range<usize>, name: &str, what: &str| {
        diags.push(Diagnostic::error(codes::UNKNOWN_ENV, span, format!("{what} names the environment `{name}`, which [environments] does not declare")).help(match edgeguard_compiler::diagnostics::suggest(name, env_names.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("declared: {}", env_names.join(", ")),
        }));
    };
    let mut envs = Vec::new();
    for (name, def) in &c.environments {
        if let Some(m) = &def.mirrors {
            if !env_names.contains(m.get_ref()) {
                unknown_env(diags, m.span(), m.get_ref(), &format!("`environments.{}.mirrors`", name.get_ref()));
            } else if m.get_ref() == name.get_ref() {
                diags.push(Diagnostic::error(codes::MIRRORS, m.span(), format!("`{}` mirrors itself", name.get_ref())).help("name another environment (staging mirrors production)"));
            }
        }
        let line = crate::import::line_of(source, name.span().start);
        envs.push(Env { name: name.get_ref().clone(), live: def.live, mirrors: def.mirrors.as_ref().map(|m| m.get_ref().clone()), line });
    }
    let mut vars = Vec::new();
    for (name, def) in c.vars {
        if let Some(v) = resolve_var(source, doc, &name, def, &env_names, diags, &unknown_env) {
            vars.push(v);
        }
    }
    Some(Catalog { file: file.to_owned(), envs, vars })
}

type UnknownEnv<'f> = dyn Fn(&mut Vec<Diagnostic>, Range<usize>, &str, &str) + 'f;

fn resolve_var(source: &str, doc: &DeTable<'_>, name: &S<String>, def: VarDef, env_names: &[String], diags: &mut Vec<Diagnostic>, unknown_env: &UnknownEnv<'_>) -> Option<Var> {
    let n = name.get_ref().as_str();
    let path = |k: &str| format!("vars.{n}.{k}");
    if !valid_env_name(n) {
        diags.push(Diagnostic::error(codes::NAME, name.span(), format!("`{n}` is not an environment variable name")).help("letters, digits and `_`, not starting with a digit"));
    }
    let Some(source_kind) = def.source.as_ref().map(|s| *s.get_ref()) else {
        diags.push(Diagnostic::error(codes::MISSING, name.span(), format!("`{n}` has no `source`")).help("say where it lives: \"fly-secret\", \"fly-env\", \"build\", \"worker-var\" or \"worker-secret\""));
        return None;
    };
    let source_span = def.source.as_ref().map_or(name.span(), Spanned::span);
    let public = n.starts_with("NEXT_PUBLIC_");
    if public && source_kind != Source::Build {
        diags.push(Diagnostic::error(codes::PUBLIC_NOT_BUILD, source_span.clone(), format!("`{n}` is a NEXT_PUBLIC_ variable, but its source is \"{}\"", source_kind.word()))
            .help("Next.js inlines NEXT_PUBLIC_* into the bundle when it builds; a value set only at run time never reaches the browser. Use source = \"build\""));
    }
    let secret = def.secret.as_ref().map_or(source_kind.encrypted(), |s| *s.get_ref());
    let secret_span = def.secret.as_ref().map_or(source_span, Spanned::span);
    if secret && public {
        diags.push(Diagnostic::error(codes::PUBLIC_SECRET, secret_span, format!("`{n}` is declared secret, but NEXT_PUBLIC_* values are sent to every browser"))
            .help("keep the secret in a server-only variable (no NEXT_PUBLIC_ prefix) with source = \"fly-secret\""));
    } else if secret && !source_kind.encrypted() {
        diags.push(Diagnostic::error(codes::PLAIN_SECRET, secret_span, format!("`{n}` is declared secret, but source \"{}\" keeps it in plain text", source_kind.word()))
            .help("source = \"fly-secret\" (the app) or \"worker-secret\" (the edge)"));
    }
    let mut envs = Vec::new();
    match &def.environments {
        None => envs.extend(env_names.iter().cloned()),
        Some(list) => {
            for e in list {
                if env_names.contains(e.get_ref()) {
                    envs.push(e.get_ref().clone());
                } else {
                    unknown_env(diags, e.span(), e.get_ref(), &format!("`{}`", path("environments")));
                }
            }
        }
    }
    let check_by_env = |diags: &mut Vec<Diagnostic>, keys: &[&str], names: Vec<&String>| {
        for e in names {
            if !env_names.contains(e) {
                unknown_env(diags, key_span(doc, keys, e), e, &format!("`{}`", keys.join(".")));
            }
        }
    };
    let mut schemes = None;
    if let Some(url) = &def.url {
        let mut list = Vec::new();
        for s in url.scheme.iter().flatten() {
            let word = s.get_ref().trim_end_matches("://").trim_end_matches(':').to_ascii_lowercase();
            if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
                diags.push(Diagnostic::error(codes::SCHEME, s.span(), format!("`{}` is not a URL scheme", s.get_ref())).help("a word such as \"https\" or \"wss\""));
            }
            list.push(word);
        }
        if list.is_empty() {
            list.push("https".to_owned());
        }
        schemes = Some(list);
        if let Some(PerEnv::ByEnv(m)) = &url.host {
            check_by_env(diags, &["vars", n, "url", "host"], m.keys().collect());
        }
    }
    if let Some(PerEnv::ByEnv(m)) = &def.one_of {
        check_by_env(diags, &["vars", n, "enum"], m.keys().collect());
    }
    let pattern = def.pattern.as_ref().and_then(|p| match regex_lite::Regex::new(&format!("^(?:{})$", p.get_ref())) {
        Ok(re) => Some((p.get_ref().clone(), re)),
        Err(e) => {
            diags.push(Diagnostic::error(codes::PATTERN, p.span(), format!("`{}` is not a valid pattern: {e}", path("pattern"))).help("Rust regex syntax; the pattern is anchored at both ends"));
            None
        }
    });
    Some(Var {
        name: n.to_owned(),
        line: crate::import::line_of(source, name.span().start),
        source: source_kind,
        envs,
        optional: def.optional.unwrap_or(false),
        secret,
        distinct: def.distinct.unwrap_or(false),
        url_schemes: schemes,
        url_host: def.url.and_then(|u| u.host),
        prefixes: def.prefix.map(|p| p.list()).unwrap_or_default(),
        live_prefixes: def.live_prefix.map(|p| p.list()).unwrap_or_default(),
        test_prefixes: def.test_prefix.map(|p| p.list()).unwrap_or_default(),
        pattern,
        one_of: def.one_of,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn codes_of(src: &str) -> Vec<&'static str> {
        check("env.toml", src).0.iter().map(|d| d.code).collect()
    }

    #[test]
    fn quotekit_catalog_is_valid() {
        let src = include_str!("../../../fixtures/quotekit.env.toml");
        let (diags, catalog) = check("quotekit.env.toml", src);
        assert!(diags.is_empty(), "{diags:?}");
        let c = catalog.unwrap();
        assert!(c.var("STRIPE_SECRET_KEY").unwrap().secret);
        assert!(!c.var("NEXT_PUBLIC_SITE_URL").unwrap().secret);
    }

    #[test]
    fn every_error_at_once() {
        let src = "version = 2\n[environments.production]\nmirrors = \"prod\"\n[vars.NEXT_PUBLIC_X]\nsource = \"fly-env\"\nsecret = true\n[vars.A]\nsource = \"fly-env\"\nsecret = true\nenvironments = [\"stagin\"]\npattern = \"(\"\nsorce = 1\n[vars.B]\nsource = \"fly-secrets\"\n[vars.\"1X\"]\nsource = \"build\"\nenum = { prod = [\"a\"] }\nurl = { scheme = [\"ht tp\"] }\n";
        let got = codes_of(src);
        for c in ["C006", "C011", "C012", "C013", "C014", "C015", "C002", "C004", "C010", "C018"] {
            assert!(got.contains(&c), "{c} missing from {got:?}");
        }
        assert_eq!(got.iter().filter(|c| **c == "C011").count(), 3, "{got:?}");
    }

    #[test]
    fn syntax_and_missing() {
        assert_eq!(codes_of("version = \n"), vec!["C001"]);
        assert!(codes_of("[environments.production]\n[vars.A]\n").contains(&"C005"));
        assert!(codes_of("version = 1\n").contains(&"C016"));
    }
}
