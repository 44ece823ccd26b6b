//! The app's environment against its catalog ([`crate::catalog`]): `doctor --catalog` reads a
//! `.env`-style file, fly.toml's `[env]` and `[build.args]`, wrangler.toml's `[vars]` and the
//! JSON that `fly secrets list --json` and `wrangler secret list` print, each for one
//! environment, and reports D050–D061 (docs/doctor.md).
//!
//! Values are read to be checked and compared, never printed: a finding names the variable,
//! the file and line, and what is wrong in the catalog's own words (a scheme, a host, a prefix
//! the catalog lists), never what the value is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::Failure;
use crate::catalog::{Catalog, Source, Var};
use crate::doctor::{Finding, Severity};

/// What an input is, and so what it can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A `.env` file: the app's whole environment (run time and build).
    Dotenv,
    /// `fly secrets list --json`: names and digests.
    FlySecrets,
    /// fly.toml `[env]`.
    FlyEnv,
    /// fly.toml `[build.args]`.
    FlyBuildArgs,
    /// `wrangler secret list`: names.
    WranglerSecrets,
    /// wrangler.toml `[vars]` (or `[env.NAME].vars`).
    WranglerVars,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Dotenv => ".env",
            Kind::FlySecrets => "fly secrets",
            Kind::FlyEnv => "fly.toml [env]",
            Kind::FlyBuildArgs => "fly.toml [build.args]",
            Kind::WranglerSecrets => "wrangler secrets",
            Kind::WranglerVars => "wrangler.toml [vars]",
        }
    }

    /// The sources whose variables this input must hold.
    fn covers(self, source: Source) -> bool {
        match self {
            Kind::Dotenv => matches!(source, Source::FlySecret | Source::FlyEnv | Source::Build),
            Kind::FlySecrets => source == Source::FlySecret,
            Kind::FlyEnv => source == Source::FlyEnv,
            Kind::FlyBuildArgs => source == Source::Build,
            Kind::WranglerSecrets => source == Source::WorkerSecret,
            Kind::WranglerVars => source == Source::WorkerVar,
        }
    }

    /// Plain text kept in the repository (a secret must not be here).
    fn plain(self) -> bool {
        matches!(self, Kind::FlyEnv | Kind::FlyBuildArgs | Kind::WranglerVars)
    }
}

/// The environment catalog and the inputs checked against it (docs/env-catalog.md): the same
/// flags for `doctor --catalog` and `ready`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CatalogArgs {
    /// The app's environment catalog: the inputs below, and `--fly`'s [env]/[build.args] and
    /// `--wrangler`'s [vars], are checked against it.
    #[arg(long, value_name = "CATALOG")]
    pub catalog: Option<std::path::PathBuf>,
    /// A .env-style file holding an environment's variables (repeatable; ENV= names the
    /// environment, else the one compiled for).
    #[arg(long, value_name = "[ENV=]FILE", requires = "catalog")]
    pub dotenv: Vec<String>,
    /// The output of `fly secrets list --json` for an environment (names and digests).
    #[arg(long = "fly-secrets", value_name = "[ENV=]JSON", requires = "catalog")]
    pub fly_secrets: Vec<String>,
    /// Another environment's fly.toml, for its [env] and [build.args] (`--fly` is the one
    /// compiled for).
    #[arg(long = "fly-env", value_name = "[ENV=]FLY_TOML", requires = "catalog")]
    pub fly_env: Vec<String>,
    /// The output of `wrangler secret list` for an environment (names).
    #[arg(long = "wrangler-secrets", value_name = "[ENV=]JSON", requires = "catalog")]
    pub wrangler_secrets: Vec<String>,
}


/// One name an input sets.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub line: Option<usize>,
    /// The value, when the input has values (never printed).
    pub value: Option<String>,
    /// `fly secrets list --json`'s digest of the value (never printed).
    pub digest: Option<String>,
}

/// One input: an environment's variables as one file holds them.
#[derive(Debug, Clone)]
pub struct Input {
    pub env: String,
    pub file: String,
    pub kind: Kind,
    pub entries: Vec<Entry>,
}

impl Input {
    fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// edgeguard's own worker vars: known without a catalog entry (doctor checks them, D008–D016).
const EDGE_VARS: [&str; 6] = ["EDGE_ACTIVE_ORIGIN", "EDGE_CANARY_PERCENT", "EDGE_SHADOW", "EDGE_ORIGINS", "EDGE_ORIGIN_AUTH_HEADER", "EDGE_POSTHOG_HOST"];

// ---------------------------------------------------------------------------------- reading

/// `ENV=FILE` or `FILE` (the default environment).
pub fn split_env_arg(arg: &str, default_env: &str) -> (String, String) {
    if let Some((env, file)) = arg.split_once('=')
        && !env.is_empty()
        && !file.is_empty()
        && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !Path::new(arg).exists()
    {
        return (env.to_owned(), file.to_owned());
    }
    (default_env.to_owned(), arg.to_owned())
}

pub fn read(file: &str) -> Result<String, Failure> {
    let bytes = std::fs::read(file).map_err(|e| Failure::usage(format!("cannot read `{file}`: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Failure::usage(format!("`{file}` is not UTF-8 text")))
}

fn line_of(src: &str, offset: usize) -> usize {
    crate::import::line_of(src, offset)
}

fn unreadable(file: &str, line: Option<usize>, message: String, fix: &str) -> Finding {
    Finding { id: "D061", severity: Severity::Error, file: file.to_owned(), line, message, fix: fix.to_owned() }
}

/// A `.env` file: `NAME=value`, `export NAME=value`, `#` comments, single- and double-quoted
/// values (double quotes may span lines and take `\n` escapes), ` #` comments after an
/// unquoted value. A name set twice: D060 (the later one wins, as in dotenv).
pub fn parse_dotenv(env: &str, file: &str, src: &str) -> (Input, Vec<Finding>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut findings = Vec::new();
    let lines: Vec<&str> = src.lines().collect();
    let mut i = 0usize;
    while let Some(raw) = lines.get(i) {
        let line_no = i.saturating_add(1);
        i = i.saturating_add(1);
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let text = text.strip_prefix("export ").map_or(text, str::trim_start);
        let Some((name, rest)) = text.split_once('=') else {
            findings.push(unreadable(file, Some(line_no), format!("line {line_no} of the .env file is not `NAME=value`"), "write `NAME=value`, or comment the line out with #"));
            continue;
        };
        let name = name.trim();
        if !crate::catalog::valid_env_name(name) {
            findings.push(unreadable(file, Some(line_no), format!("line {line_no} of the .env file does not start with a variable name"), "names are letters, digits and `_`, not starting with a digit"));
            continue;
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('"') {
            let mut body = body.to_owned();
            while !closes(&body) {
                let Some(next) = lines.get(i) else { break };
                body.push('\n');
                body.push_str(next);
                i = i.saturating_add(1);
            }
            let end = closing_quote(&body).unwrap_or(body.len());
            body.get(..end).unwrap_or_default().replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(body) = rest.strip_prefix('\'') {
            body.find('\'').map_or(body, |end| body.get(..end).unwrap_or_default()).to_owned()
        } else {
            rest.find(" #").map_or(rest, |at| rest.get(..at).unwrap_or_default()).trim_end().to_owned()
        };
        if let Some(earlier) = entries.iter().position(|e| e.name == name) {
            let first = entries.remove(earlier);
            findings.push(Finding {
                id: "D060",
                severity: Severity::Warning,
                file: file.to_owned(),
                line: Some(line_no),
                message: format!("{name} is set twice (lines {} and {line_no}): the later one wins, and the first is dead text a reader may take for the value", first.line.unwrap_or(0)),
                fix: format!("keep one {name}"),
            });
        }
        entries.push(Entry { name: name.to_owned(), line: Some(line_no), value: Some(value), digest: None });
    }
    (Input { env: env.to_owned(), file: file.to_owned(), kind: Kind::Dotenv, entries }, findings)
}

fn closing_quote(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn closes(body: &str) -> bool {
    closing_quote(body).is_some()
}

/// `fly secrets list --json` (`[{"Name": …, "Digest": …}]`, either case) or `wrangler secret
/// list` (`[{"name": …, "type": "secret_text"}]`); a list of names is accepted too.
pub fn parse_names_json(env: &str, file: &str, src: &str, kind: Kind) -> (Input, Vec<Finding>) {
    let empty = Input { env: env.to_owned(), file: file.to_owned(), kind, entries: Vec::new() };
    let fix = match kind {
        Kind::FlySecrets => "save the output of `fly secrets list --json -a APP`",
        _ => "save the output of `wrangler secret list` (add `--env NAME` for an environment)",
    };
    let items = match serde_json::from_str::<serde_json::Value>(src) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(_) => return (empty, vec![unreadable(file, None, format!("`{file}` is not a JSON list of secrets"), fix)]),
        Err(e) => return (empty, vec![unreadable(file, Some(e.line()), format!("`{file}` is not JSON: {e}"), fix)]),
    };
    let mut entries = Vec::new();
    let mut findings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |k: &str| item.get(k).or_else(|| item.get(k.to_ascii_lowercase())).and_then(serde_json::Value::as_str);
        let name = item.as_str().or_else(|| field("Name"));
        let Some(name) = name.map(str::to_owned) else {
            findings.push(unreadable(file, None, format!("item {} of `{file}` has no name", i.saturating_add(1)), fix));
            continue;
        };
        let quoted = format!("\"{name}\"");
        let line = src.find(&quoted).map(|at| line_of(src, at));
        entries.push(Entry { name, line, value: None, digest: field("Digest").map(str::to_owned) });
    }
    (Input { entries, ..empty }, findings)
}

/// The entries of a TOML table (a scalar's text as the variable holds it), with their lines.
fn table_entries(src: &str, table: Option<&DeTable<'_>>) -> Vec<Entry> {
    let Some(table) = table else { return Vec::new() };
    table
        .iter()
        .map(|(k, v)| {
            let value = match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(i) => Some(i.as_str().to_owned()),
                DeValue::Float(f) => Some(f.as_str().to_owned()),
                DeValue::Boolean(b) => Some(b.to_string()),
                _ => None,
            };
            Entry { name: k.get_ref().to_string(), line: Some(line_of(src, k.span().start)), value, digest: None }
        })
        .collect()
}

fn sub_table<'t, 'a>(root: &'t DeTable<'a>, keys: &[&str]) -> Option<&'t DeTable<'a>> {
    let mut t = root;
    for k in keys {
        t = t.get(*k)?.get_ref().as_table()?;
    }
    Some(t)
}

/// fly.toml's `[env]` and, when it has one, `[build.args]` (without it, build arguments come
/// from elsewhere — `--build-arg`, CI — and are not judged from this file).
pub fn parse_fly(env: &str, file: &str, src: &str) -> (Vec<Input>, Vec<Finding>) {
    let doc = match DeTable::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let at = e.span().map(|s| line_of(src, s.start));
            return (Vec::new(), vec![unreadable(file, at, format!("`{file}` is not valid TOML: {}", e.message().trim()), "fix the syntax; `fly deploy` cannot read it either")]);
        }
    };
    let root = doc.get_ref();
    let mut inputs = vec![Input { env: env.to_owned(), file: file.to_owned(), kind: Kind::FlyEnv, entries: table_entries(src, sub_table(root, &["env"])) }];
    if let Some(args) = sub_table(root, &["build", "args"]) {
        inputs.push(Input { env: env.to_owned(), file: file.to_owned(), kind: Kind::FlyBuildArgs, entries: table_entries(src, Some(args)) });
    }
    (inputs, Vec::new())
}

/// wrangler.toml's `[vars]`, or `[env.NAME].vars` when `overlay` names an environment that
/// has an `[env.NAME]` table (wrangler does not inherit `vars`). The tree is doctor's.
pub fn wrangler_vars(env: &str, file: &str, src: &str, root: &DeTable<'_>, overlay: Option<&str>) -> Input {
    let vars = match overlay.and_then(|o| sub_table(root, &["env", o])) {
        Some(t) => t.get("vars").and_then(|v| v.get_ref().as_table()),
        None => sub_table(root, &["vars"]),
    };
    Input { env: env.to_owned(), file: file.to_owned(), kind: Kind::WranglerVars, entries: table_entries(src, vars) }
}

// ----------------------------------------------------------------------------------- checks

/// The host a catalog's `host = "canonical"` stands for, by environment.
pub type Canonical<'f> = dyn Fn(&str) -> Option<String> + 'f;

/// Every finding for these inputs against the catalog.
pub fn check(catalog: &Catalog, inputs: &[Input], canonical: &Canonical<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for input in inputs {
        if catalog.env(&input.env).is_none() {
            out.push(Finding {
                id: "D050",
                severity: Severity::Error,
                file: input.file.clone(),
                line: None,
                message: format!("{} is read for the environment `{}`, which the catalog ({}) does not declare", input.kind.label(), input.env, catalog.file),
                fix: format!("declare [environments.{}] in the catalog, or pass the file as ENV=FILE with one of: {}", input.env, catalog.envs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")),
            });
            continue;
        }
        check_missing(catalog, input, &mut out);
        check_present(catalog, input, canonical, &mut out);
    }
    check_parity(catalog, inputs, &mut out);
    check_distinct(catalog, inputs, &mut out);
    out
}

/// D050: a variable the catalog requires in this environment, absent from an input that holds
/// its kind.
fn check_missing(catalog: &Catalog, input: &Input, out: &mut Vec<Finding>) {
    for var in catalog.vars.iter().filter(|v| v.required_in(&input.env) && input.kind.covers(v.source)) {
        if input.get(&var.name).is_none() {
            out.push(Finding {
                id: "D050",
                severity: Severity::Error,
                file: input.file.clone(),
                line: None,
                message: format!("{} is missing from {} for {} ({}:{} requires it there, source \"{}\")", var.name, input.kind.label(), input.env, catalog.file, var.line, var.source.word()),
                fix: format!("set it: {}", var.source.how(&var.name)),
            });
        }
    }
}

fn finding(id: &'static str, severity: Severity, input: &Input, entry: &Entry, message: String, fix: String) -> Finding {
    Finding { id, severity, file: input.file.clone(), line: entry.line, message, fix }
}

/// D051–D055, D059: each name an input sets.
fn check_present(catalog: &Catalog, input: &Input, canonical: &Canonical<'_>, out: &mut Vec<Finding>) {
    for entry in &input.entries {
        let var = catalog.var(&entry.name);
        if let Some(value) = &entry.value
            && entry.name.starts_with("NEXT_PUBLIC_")
            && let Some(what) = looks_secret(value, &entry.name, catalog, input)
        {
            out.push(finding("D054", Severity::Error, input, entry, format!("{} holds what looks like {what}: NEXT_PUBLIC_* values are inlined into the JavaScript every visitor downloads", entry.name), format!("move the secret to a server-only variable, rotate it, and set {} to its public counterpart", entry.name)));
            continue;
        }
        let Some(var) = var else {
            if !(input.kind == Kind::WranglerVars && EDGE_VARS.contains(&entry.name.as_str())) {
                out.push(finding("D051", Severity::Warning, input, entry, format!("{} is set in {} for {} but the catalog ({}) does not list it", entry.name, input.kind.label(), input.env, catalog.file), format!("add [vars.{}] to the catalog, or remove it if nothing reads it", entry.name)));
            }
            continue;
        };
        if !input.kind.covers(var.source) {
            if var.secret && input.kind.plain() {
                out.push(finding("D052", Severity::Error, input, entry, format!("{} is a secret ({}:{}) but is written in plain text in {}", var.name, catalog.file, var.line, input.kind.label()), format!("delete it here, rotate it, and set it with {}", var.source.how(&var.name))));
                continue;
            }
            // A build variable also set at run time ([env]) is harmless: server code may read it.
            if !(var.source == Source::Build && input.kind == Kind::FlyEnv) {
                out.push(finding("D051", Severity::Warning, input, entry, format!("{} is set in {}, but the catalog ({}:{}) says it lives in {}", var.name, input.kind.label(), catalog.file, var.line, var.source.word()), format!("move it: {}", var.source.how(&var.name))));
            }
        }
        if !var.belongs_to(&input.env) {
            out.push(finding("D051", Severity::Warning, input, entry, format!("{} is set for {}, but the catalog ({}:{}) has it only in {}", var.name, input.env, catalog.file, var.line, var.envs.join(", ")), format!("remove it from {}'s {}, or add {} to its `environments`", input.env, input.kind.label(), input.env)));
            continue;
        }
        if let Some(value) = &entry.value {
            let env = catalog.env(&input.env);
            if let Some((id, severity, message, fix)) = check_value(var, value, &input.env, env.and_then(|e| e.live), canonical) {
                out.push(finding(id, severity, input, entry, format!("{} in {} for {}: {message} ({}:{})", var.name, input.kind.label(), input.env, catalog.file, var.line), fix));
            }
        }
    }
}

/// Known shapes of secrets, by prefix.
const SECRET_PREFIXES: [(&str, &str); 13] = [
    ("sk_live_", "a Stripe live secret key"),
    ("sk_test_", "a Stripe test secret key"),
    ("rk_live_", "a Stripe restricted key"),
    ("rk_test_", "a Stripe restricted key"),
    ("whsec_", "a Stripe webhook signing secret"),
    ("re_", "a Resend API key"),
    ("phx_", "a PostHog personal API key"),
    ("sb_secret_", "a Supabase secret key"),
    ("sbp_", "a Supabase access token"),
    ("ghp_", "a GitHub token"),
    ("github_pat_", "a GitHub token"),
    ("xoxb-", "a Slack token"),
    ("-----BEGIN", "a PEM private key"),
];

/// What a public value looks like when it looks like a secret.
fn looks_secret(value: &str, name: &str, catalog: &Catalog, input: &Input) -> Option<String> {
    let v = value.trim();
    if let Some((_, what)) = SECRET_PREFIXES.iter().find(|(p, _)| v.starts_with(p)) {
        return Some((*what).to_owned());
    }
    if jwt_role(v).as_deref() == Some("service_role") {
        return Some("a Supabase service-role key (a JWT with role service_role, which bypasses row-level security)".to_owned());
    }
    let authority = v.split_once("://").map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or_default());
    if authority.and_then(|a| a.rsplit_once('@')).is_some_and(|(userinfo, _)| userinfo.contains(':')) {
        return Some("a URL with a password in it".to_owned());
    }
    input
        .entries
        .iter()
        .filter(|e| e.name != name && !e.name.starts_with("NEXT_PUBLIC_") && e.value.as_deref().is_some_and(|o| !o.is_empty() && o == value))
        .find(|e| catalog.var(&e.name).is_some_and(|v| v.secret))
        .map(|e| format!("the secret {} (the same value)", e.name))
}

/// The `role` claim of a JWT's payload, when the value is a JWT.
fn jwt_role(value: &str) -> Option<String> {
    let mut parts = value.split('.');
    let (Some(head), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return None };
    if !head.starts_with("eyJ") {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&base64url(payload)?).ok()?;
    json.get("role").and_then(serde_json::Value::as_str).map(str::to_owned)
}

fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len().saturating_mul(3) / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c.wrapping_sub(b'A'),
            b'a'..=b'z' => c.wrapping_sub(b'a').wrapping_add(26),
            b'0'..=b'9' => c.wrapping_sub(b'0').wrapping_add(52),
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits = bits.saturating_add(6);
        if bits >= 8 {
            bits = bits.saturating_sub(8);
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Placeholders left from an example file.
fn placeholder(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    ["UPDATE_THIS", "YOUR_", "YOUR-", "CHANGEME", "CHANGE_ME", "REPLACE_ME", "<", "XXXX", "TODO"].iter().any(|p| upper.contains(p))
}

type Problem = (&'static str, Severity, String, String);

/// The first problem with a value, if any: placeholder (D059), live/test mix (D055), format
/// (D053). The value itself never enters the message.
fn check_value(var: &Var, value: &str, env: &str, live: Option<bool>, canonical: &Canonical<'_>) -> Option<Problem> {
    let set = format!("set {} to {}", var.name, describe(var, env, live, canonical));
    if value.trim().is_empty() {
        return Some(("D053", Severity::Error, "it is empty".to_owned(), set));
    }
    if placeholder(value) {
        return Some(("D059", Severity::Error, "it holds a placeholder from an example file, not a value".to_owned(), set));
    }
    let starts = |list: &[String]| list.iter().find(|p| value.starts_with(p.as_str())).cloned();
    if live == Some(false)
        && let Some(p) = starts(&var.live_prefixes)
    {
        return Some(("D055", Severity::Error, format!("a live key (`{p}…`) in {env}, an environment the catalog marks `live = false`: {env} would charge real cards and touch real data"), format!("use the test key (`{}…`) in {env}", var.test_prefixes.join("` or `"))));
    }
    if live == Some(true)
        && let Some(p) = starts(&var.test_prefixes)
    {
        return Some(("D055", Severity::Error, format!("a test key (`{p}…`) in {env}, an environment the catalog marks `live = true`: real customers' payments would go to test mode"), format!("use the live key (`{}…`) in {env}", var.live_prefixes.join("` or `"))));
    }
    let mode_prefixes: Vec<String> = match live {
        Some(true) => var.live_prefixes.clone(),
        Some(false) => var.test_prefixes.clone(),
        None => var.live_prefixes.iter().chain(&var.test_prefixes).cloned().collect(),
    };
    if !mode_prefixes.is_empty() && starts(&mode_prefixes).is_none() {
        return Some(("D053", Severity::Error, format!("it does not start with `{}`", mode_prefixes.join("` or `")), set));
    }
    if !var.prefixes.is_empty() && starts(&var.prefixes).is_none() {
        return Some(("D053", Severity::Error, format!("it does not start with `{}`", var.prefixes.join("` or `")), set));
    }
    if let Some(problem) = url_problem(var, value, env, canonical) {
        return Some(("D053", Severity::Error, problem, set));
    }
    if let Some((pattern, re)) = &var.pattern
        && !re.is_match(value)
    {
        return Some(("D053", Severity::Error, format!("it does not match the pattern `{pattern}`"), set));
    }
    if let Some(allowed) = var.one_of.as_ref().and_then(|o| o.get(env))
        && !allowed.iter().any(|a| a == value)
    {
        return Some(("D053", Severity::Error, format!("it is not one of the values allowed in {env} ({})", quoted(allowed)), set));
    }
    None
}

fn quoted(list: &[String]) -> String {
    list.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

/// What the catalog asks of the value, for fixes.
fn describe(var: &Var, env: &str, live: Option<bool>, canonical: &Canonical<'_>) -> String {
    if let Some(schemes) = &var.url_schemes {
        let host = var.url_host.as_ref().and_then(|h| h.get(env)).map(|h| if h == "canonical" { canonical(env).unwrap_or_else(|| "the policy's canonical host".to_owned()) } else { h.clone() });
        return format!("a {} URL{}", schemes.join("/"), host.map(|h| format!(" on {h}")).unwrap_or_default());
    }
    if let Some(allowed) = var.one_of.as_ref().and_then(|o| o.get(env)) {
        return format!("one of {}", quoted(allowed));
    }
    let mode: Vec<&String> = match live {
        Some(true) => var.live_prefixes.iter().collect(),
        Some(false) => var.test_prefixes.iter().collect(),
        None => var.live_prefixes.iter().chain(&var.test_prefixes).collect(),
    };
    let prefixes: Vec<&String> = var.prefixes.iter().chain(mode).collect();
    if !prefixes.is_empty() {
        return format!("the key that starts with `{}`", prefixes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("` or `"));
    }
    if let Some((pattern, _)) = &var.pattern {
        return format!("a value matching `{pattern}`");
    }
    "its real value".to_owned()
}

/// A URL's scheme and host against the catalog's (the value is not echoed; its scheme and
/// host are named, neither being secret).
fn url_problem(var: &Var, value: &str, env: &str, canonical: &Canonical<'_>) -> Option<String> {
    let schemes = var.url_schemes.as_ref()?;
    let Some((scheme, rest)) = value.split_once("://") else {
        return Some("it is not a URL (no `scheme://`)".to_owned());
    };
    let scheme = scheme.to_ascii_lowercase();
    if !schemes.contains(&scheme) {
        return Some(format!("its scheme is {scheme}, not {}", schemes.join(" or ")));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h).to_ascii_lowercase();
    if host.is_empty() {
        return Some("it has no host".to_owned());
    }
    let want = var.url_host.as_ref().and_then(|h| h.get(env))?;
    let (want, why) = if want == "canonical" {
        match canonical(env) {
            Some(h) => (h, " (the policy's canonical host)"),
            None => return Some(format!("the catalog asks for the policy's canonical host, but the policy compiled for {env} has no single canonical host")),
        }
    } else {
        (want.to_ascii_lowercase(), "")
    };
    (host != want).then(|| format!("its host is {host}, not {want}{why}"))
}

/// D056: a name one environment's input has and its mirror's input of the same kind lacks,
/// when the catalog does not account for it (a variable both need is D050 instead). D058:
/// the differences the catalog declares, once per pair.
fn check_parity(catalog: &Catalog, inputs: &[Input], out: &mut Vec<Finding>) {
    for env in &catalog.envs {
        let Some(mirror) = env.mirrors.as_deref() else { continue };
        let declared: Vec<&str> = catalog.vars.iter().filter(|v| v.belongs_to(&env.name) != v.belongs_to(mirror)).map(|v| v.name.as_str()).collect();
        if !declared.is_empty() {
            out.push(Finding {
                id: "D058",
                severity: Severity::Info,
                file: catalog.file.clone(),
                line: Some(env.line),
                message: format!("{} mirrors {mirror} except for what the catalog declares for one of them only: {}", env.name, declared.join(", ")),
                fix: "nothing to do if intended; each is checked in the environments it lists".to_owned(),
            });
        }
        let kinds: BTreeSet<Kind> = inputs.iter().filter(|i| i.env == env.name).map(|i| i.kind).collect();
        for kind in kinds {
            let (Some(a), Some(b)) = (inputs.iter().find(|i| i.env == env.name && i.kind == kind), inputs.iter().find(|i| i.env == mirror && i.kind == kind)) else { continue };
            for (has, lacks) in [(a, b), (b, a)] {
                for entry in has.entries.iter().filter(|e| lacks.get(&e.name).is_none()) {
                    let accounted = catalog.var(&entry.name).is_some_and(|v| !v.optional && v.belongs_to(&lacks.env) && kind.covers(v.source))
                        || catalog.var(&entry.name).is_some_and(|v| v.belongs_to(&has.env) != v.belongs_to(&lacks.env));
                    if !accounted {
                        out.push(Finding {
                            id: "D056",
                            severity: Severity::Warning,
                            file: has.file.clone(),
                            line: entry.line,
                            message: format!("parity: {} is set in {}'s {} but not in {}'s ({})", entry.name, has.env, kind.label(), lacks.env, lacks.file),
                            fix: format!("set it in {} too, or declare it for {} only with `environments` in the catalog", lacks.env, has.env),
                        });
                    }
                }
            }
        }
    }
}

/// D057: a `distinct = true` variable with the same value (or the same Fly digest) in two
/// environments.
fn check_distinct(catalog: &Catalog, inputs: &[Input], out: &mut Vec<Finding>) {
    for var in catalog.vars.iter().filter(|v| v.distinct) {
        // (kind, fingerprint) → the first environment seen with it.
        let mut seen: BTreeMap<(Kind, String), (&str, &str)> = BTreeMap::new();
        for input in inputs {
            let Some(entry) = input.get(&var.name) else { continue };
            let Some(print) = entry.digest.clone().or_else(|| entry.value.clone()).filter(|p| !p.is_empty()) else { continue };
            let compared = if entry.digest.is_some() { "digest" } else { "value" };
            match seen.get(&(input.kind, print.clone())) {
                Some((env, file)) if *env != input.env => out.push(Finding {
                    id: "D057",
                    severity: Severity::Error,
                    file: input.file.clone(),
                    line: entry.line,
                    message: format!("{} has the same {compared} in {} and {} ({file}); the catalog ({}:{}) says it must differ: a leak from one is a leak from both", var.name, input.env, env, catalog.file, var.line),
                    fix: format!("give {} its own {} and rotate the shared one", input.env, var.name),
                }),
                Some(_) => {}
                None => {
                    seen.insert((input.kind, print), (&input.env, &input.file));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The deployment files doctor reads are whatever a team has: every reader answers any
        /// text (findings, never a panic), and no finding quotes a value it read.
        #[test]
        fn any_input_file_is_read_without_panic_or_leak(
            text in "\\PC{0,300}",
            pairs in proptest::collection::vec(("[A-Z_]{1,12}", "[a-z0-9]{12,20}"), 0..8),
        ) {
            let _ = parse_dotenv("production", ".env", &text);
            let _ = parse_names_json("production", "secrets.json", &text, Kind::FlySecrets);
            let _ = parse_fly("production", "fly.toml", &text);
            let _ = crate::catalog::check("env.toml", &text);
            let dotenv: String = pairs.iter().map(|(n, v)| format!("{n}=secret-{v}\n")).collect();
            let (_, findings) = parse_dotenv("production", ".env", &dotenv);
            for f in &findings {
                let shown = format!("{f:?}");
                for (_, v) in &pairs {
                    prop_assert!(!shown.contains(&format!("secret-{v}")), "{shown}");
                }
            }
        }
    }

    #[test]
    fn dotenv_syntax() {
        let src = "# c\nexport A=1\nB='two # not a comment'\nC=\"multi\nline\" \nD=plain # comment\nE\n1X=2\nA=3\n";
        let (input, findings) = parse_dotenv("production", ".env", src);
        let get = |n: &str| input.get(n).and_then(|e| e.value.clone());
        assert_eq!(get("A").as_deref(), Some("3"));
        assert_eq!(get("B").as_deref(), Some("two # not a comment"));
        assert_eq!(get("C").as_deref(), Some("multi\nline"));
        assert_eq!(get("D").as_deref(), Some("plain"));
        let ids: Vec<(&str, Option<usize>)> = findings.iter().map(|f| (f.id, f.line)).collect();
        assert_eq!(ids, vec![("D061", Some(7)), ("D061", Some(8)), ("D060", Some(9))]);
    }

    #[test]
    fn jwt_roles() {
        // {"alg":"HS256","typ":"JWT"} . {"role":"service_role"} . sig
        let service = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2ln";
        assert_eq!(jwt_role(service).as_deref(), Some("service_role"));
        let anon = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln";
        assert_eq!(jwt_role(anon).as_deref(), Some("anon"));
        assert_eq!(jwt_role("a.b.c"), None);
    }

    #[test]
    fn names_json_shapes() {
        let (i, f) = parse_names_json("production", "s.json", "[{\"Name\":\"A\",\"Digest\":\"d1\"},{\"name\":\"B\",\"type\":\"secret_text\"},\"C\"]", Kind::FlySecrets);
        assert!(f.is_empty());
        assert_eq!(i.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(i.entries[0].digest.as_deref(), Some("d1"));
        let (_, f) = parse_names_json("production", "s.json", "{\"a\":1}", Kind::FlySecrets);
        assert_eq!(f[0].id, "D061");
    }
}
