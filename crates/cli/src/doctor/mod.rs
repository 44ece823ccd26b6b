//! `edgeguard doctor`: check a policy against the deployment around it — the worker's
//! `wrangler.toml`, the app's `fly.toml`, the app's own routes and its Next.js version — and
//! say what to fix.
//!
//! Every finding has a severity (error, warning, info), a stable id (`D001`…, documented in
//! docs/doctor.md), the file and line it concerns when known, and a one-line fix. Exit 1 when
//! there is an error (or a warning, with `--deny-warnings`), 0 otherwise, 2 for usage errors
//! (a file that cannot be read).
//!
//! Names a deployment with `scope = "global"` limits needs (documented in docs/doctor.md): the
//! Durable Object class [`LIMITER_CLASS`](crate::engine::LIMITER_CLASS) bound as
//! [`LIMITER_BINDING`](crate::engine::LIMITER_BINDING), created by a
//! `[[migrations]]` entry listing it in `new_sqlite_classes`.

use core::ops::Range;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use edgeguard_core::Bundle;
use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::import;
use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Failure, Status, catalog, envcheck, output, policy};

mod app;
mod fly;
mod wrangler;

use app::check_app;
use fly::check_fly;
use wrangler::{check_build_dir, check_wrangler};

/// Where the docs' examples have `edgeguard build` write the worker.
const BUILT_ENTRY: &str = "edge/index.mjs";

/// What the shell does with an invalid `EDGE_ACTIVE_ORIGIN` or `EDGE_CANARY_PERCENT`
/// (crates/worker/js/shell.mjs): both levers are dropped, the site keeps being served.
const IGNORED_OVERRIDE: &str = "the worker logs `ignoring invalid deploy override`, ignores both EDGE_ACTIVE_ORIGIN and EDGE_CANARY_PERCENT and keeps the policy's [deploy], so the switch silently does not happen";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One block per finding, then a summary line.
    Text,
    /// One JSON object: { ok, errors, warnings, infos, checked, findings: [...] }.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…,title=D003::…`).
    Github,
}

/// Check a policy against its deployment: wrangler.toml, fly.toml and the app's routes.
#[derive(Debug, clap::Args)]
#[command(after_help = "Each finding has an id (D001…; see docs/doctor.md), a severity, the file and \
    line it concerns and a fix. Only the files given are checked. Exit 1 on an error (or a warning \
    with --deny-warnings), 0 otherwise, 2 when a file cannot be read.\n\n\
    Examples:\n  \
    edgeguard doctor policy.toml --wrangler wrangler.toml --fly ../app/fly.toml\n  \
    edgeguard doctor policy.toml --app ../app            # routes the policy does not know, next's version\n  \
    edgeguard doctor policy.toml --wrangler wrangler.toml --format github --deny-warnings")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// The worker's wrangler.toml, or wrangler.json / wrangler.jsonc (read by extension).
    #[arg(long, value_name = "WRANGLER_TOML")]
    pub wrangler: Option<PathBuf>,
    /// The app's fly.toml.
    #[arg(long, value_name = "FLY_TOML")]
    pub fly: Option<PathBuf>,
    /// The Next.js app's root directory: compare its routes with the policy's, check its
    /// Next.js version.
    #[arg(long, value_name = "APP_DIR")]
    pub app: Option<PathBuf>,
    /// A directory `edgeguard build` wrote: its bundle must load in its engine and be POLICY's
    /// (checked for wrangler.toml's `main` too).
    #[arg(long, value_name = "DIR")]
    pub worker: Option<PathBuf>,
    /// Compile for this environment (overrides `app.environment`); also reads wrangler.toml's
    /// `[env.NAME]` when it has one.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    #[command(flatten)]
    pub inputs: crate::envcheck::CatalogArgs,
    /// Treat warnings as errors for the exit code.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub file: String,
    /// 1-based; `null` when the finding is about something missing.
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

/// `doctor --format json`, keys in this order.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    errors: usize,
    warnings: usize,
    infos: usize,
    checked: &'a [String],
    findings: &'a [Finding],
}

/// What doctor found, and which files it read.
pub struct Doctored {
    pub findings: Vec<Finding>,
    pub checked: Vec<String>,
}

pub fn run(args: &Args) -> CmdResult {
    let Doctored { findings, checked } = match collect(args)? {
        Ok(d) => d,
        Err(status) => return Ok(status),
    };
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, infos) = (count(Severity::Error), count(Severity::Warning), count(Severity::Info));
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    let summary = summary(errors, warnings, infos, args.deny_warnings, &checked);
    match args.format {
        Format::Text => output::print(&format!("{}{summary}", text(&findings)))?,
        Format::Json => {
            let report = Report { ok: !failed, errors, warnings, infos, checked: &checked, findings: &findings };
            let json = serde_json::to_string_pretty(&report).map_err(|e| Failure::failed(format!("cannot serialize the findings: {e}")))?;
            output::print(&format!("{json}\n"))?;
        }
        Format::Github => {
            output::print(&github(&findings))?;
            output::eprint(&summary);
        }
    }
    Ok(if failed { Status::Failed } else { Status::Success })
}

/// Every finding for `args`; `Err(Status::Failed)` when the policy (or the catalog) has errors,
/// which are then printed on stderr the way `check` prints them.
pub fn collect(args: &Args) -> Result<Result<Doctored, Status>, Failure> {
    // Every input is read before anything is checked: an unreadable one is a usage error.
    let wrangler = args.wrangler.as_deref().map(read_text).transpose()?;
    let fly = args.fly.as_deref().map(read_text).transpose()?;
    let compiled = policy::load(&args.policy, args.env.as_deref())?;
    let counts = Counts::of(&compiled.output.diagnostics);
    if counts.errors > 0 {
        let errors: Vec<_> = compiled.output.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
        render::text(Stream::Stderr, &compiled.file, &compiled.source, &errors)?;
        output::eprint(&render::summary(&compiled.file, counts, false));
        output::eprint("error: fix the policy first (`edgeguard check`); doctor needs it to compile\n");
        return Ok(Err(Status::Failed));
    }
    let Some(bundle) = compiled.output.bundle.as_ref() else {
        return Err(Failure::failed(format!("`{}` compiled without errors but no bundle was produced (a bug in edgeguard)", compiled.file)));
    };
    let catalog = match args.inputs.catalog.as_deref().map(load_catalog).transpose()? {
        Some(Err(status)) => return Ok(Err(status)),
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let scan = args.app.as_deref().map(import::scan).transpose()?;

    let policy_doc = DeTable::parse(&compiled.source).ok();
    let mut cx = Cx {
        policy_file: &compiled.file,
        policy_src: &compiled.source,
        policy_doc: policy_doc.as_ref().map(Spanned::get_ref),
        bundle,
        findings: Vec::new(),
        origin_overrides: Vec::new(),
    };
    let mut checked = vec![compiled.file.clone()];
    if let (Some(path), Some(src)) = (&args.wrangler, &wrangler) {
        checked.push(path.display().to_string());
        check_wrangler(&mut cx, path, src, args.env.as_deref());
    }
    if let (Some(path), Some(src)) = (&args.fly, &fly) {
        checked.push(path.display().to_string());
        check_fly(&mut cx, &path.display().to_string(), src);
    }
    if let Some(dir) = &args.worker {
        checked.push(dir.display().to_string());
        let file = dir.display().to_string();
        check_build_dir(&mut cx, &file, None, dir);
    }
    if let (Some(dir), Some(scan)) = (&args.app, &scan) {
        checked.push(dir.display().to_string());
        check_app(&mut cx, dir, scan)?;
    }
    let mut findings = cx.findings;
    if let Some(catalog) = &catalog {
        let env = bundle.app.environment.clone();
        findings.extend(check_environment(args, catalog, &env, wrangler.as_deref(), fly.as_deref(), &mut checked)?);
    }
    Ok(Ok(Doctored { findings, checked }))
}

/// Read and check a catalog; its errors are printed (as `check` prints a policy's) and fail.
pub fn load_catalog(path: &Path) -> Result<Result<catalog::Catalog, Status>, Failure> {
    let loaded = catalog::load(path)?;
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    match loaded.catalog {
        Some(c) if errors.is_empty() => Ok(Ok(c)),
        _ => {
            render::text(Stream::Stderr, &loaded.file, &loaded.source, &errors)?;
            output::eprint(&render::summary(&loaded.file, Counts::of(&errors), false));
            output::eprint("error: fix the catalog first; doctor needs it to check the environment\n");
            Ok(Err(Status::Failed))
        }
    }
}

/// Reads one input file: (environment, file name, text) → its inputs and findings.
type ParseInput = dyn Fn(&str, &str, &str) -> (Vec<envcheck::Input>, Vec<Finding>);

/// The environment's inputs against the catalog (D050–D061).
fn check_environment(args: &Args, catalog: &catalog::Catalog, env: &str, wrangler: Option<&str>, fly: Option<&str>, checked: &mut Vec<String>) -> Result<Vec<Finding>, Failure> {
    let mut inputs = Vec::new();
    let mut findings = Vec::new();
    if let (Some(path), Some(src)) = (&args.fly, fly) {
        let (mut i, f) = envcheck::parse_fly(env, &path.display().to_string(), src);
        inputs.append(&mut i);
        // A fly.toml that does not parse is D020 already.
        findings.extend(f.into_iter().filter(|f| f.id != "D061"));
    }
    if let (Some(path), Some(src)) = (&args.wrangler, wrangler) {
        let is_json = path.extension().is_some_and(|e| e == "json" || e == "jsonc");
        let tree = if is_json { parse_jsonc(src).ok() } else { DeTable::parse(src).ok() };
        if let Some(tree) = tree {
            inputs.push(envcheck::wrangler_vars(env, &path.display().to_string(), src, tree.get_ref(), args.env.as_deref()));
        }
    }
    let mut read_each = |list: &[String], parse: &ParseInput| -> Result<(), Failure> {
        for arg in list {
            let (e, file) = envcheck::split_env_arg(arg, env);
            let src = envcheck::read(&file)?;
            checked.push(file.clone());
            let (mut i, f) = parse(&e, &file, &src);
            inputs.append(&mut i);
            findings.extend(f);
        }
        Ok(())
    };
    read_each(&args.inputs.dotenv, &|e, f, s| {
        let (i, f) = envcheck::parse_dotenv(e, f, s);
        (vec![i], f)
    })?;
    read_each(&args.inputs.fly_secrets, &|e, f, s| {
        let (i, f) = envcheck::parse_names_json(e, f, s, envcheck::Kind::FlySecrets);
        (vec![i], f)
    })?;
    read_each(&args.inputs.fly_env, &|e, f, s| envcheck::parse_fly(e, f, s))?;
    read_each(&args.inputs.wrangler_secrets, &|e, f, s| {
        let (i, f) = envcheck::parse_names_json(e, f, s, envcheck::Kind::WranglerSecrets);
        (vec![i], f)
    })?;
    checked.push(catalog.file.clone());
    // The policy's canonical host in each environment the inputs are for.
    let mut hosts: BTreeMap<String, Option<String>> = BTreeMap::new();
    for i in &inputs {
        if !hosts.contains_key(&i.env) {
            let host = policy::load(&args.policy, Some(&i.env))?.output.bundle.and_then(|b| b.app.canonical_host.clone().or_else(|| (b.app.hosts.len() == 1).then(|| b.app.hosts.first().cloned()).flatten()));
            hosts.insert(i.env.clone(), host);
        }
    }
    findings.extend(envcheck::check(catalog, &inputs, &|e: &str| hosts.get(e).cloned().flatten()));
    Ok(findings)
}

fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| Failure::usage(format!("`{}` is not UTF-8 text", path.display())))
}

/// What the checks share.
struct Cx<'a> {
    policy_file: &'a str,
    policy_src: &'a str,
    policy_doc: Option<&'a DeTable<'a>>,
    bundle: &'a Bundle,
    findings: Vec<Finding>,
    /// Origin URLs from wrangler's `EDGE_ORIGINS` (they stand in for the policy's).
    origin_overrides: Vec<String>,
}

impl Cx<'_> {
    fn push(&mut self, id: &'static str, severity: Severity, file: &str, line: Option<usize>, message: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding { id, severity, file: file.to_owned(), line, message: message.into(), fix: fix.into() });
    }

    /// `policy.toml:12` for the value at this key path of the policy, or just the file.
    fn policy_at(&self, keys: &[&str]) -> String {
        let line = self.policy_doc.and_then(|doc| lookup(doc, keys)).map(|v| import::line_of(self.policy_src, v.span().start));
        match line {
            Some(l) => format!("{}:{l}", self.policy_file),
            None => self.policy_file.to_owned(),
        }
    }
}

// -------------------------------------------------------------------------------- TOML access

type Val<'a> = Spanned<DeValue<'a>>;

fn lookup<'t, 'a>(table: &'t DeTable<'a>, keys: &[&str]) -> Option<&'t Val<'a>> {
    let (first, rest) = keys.split_first()?;
    let v = table.get(*first)?;
    if rest.is_empty() { Some(v) } else { lookup(v.get_ref().as_table()?, rest) }
}

fn as_str<'t>(v: &'t Val<'_>) -> Option<&'t str> {
    v.get_ref().as_str()
}

fn as_int(v: &Val<'_>) -> Option<i64> {
    let i = v.get_ref().as_integer()?;
    i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
}

fn as_table<'t, 'a>(v: &'t Val<'a>) -> Option<&'t DeTable<'a>> {
    v.get_ref().as_table()
}

fn as_array<'t, 'a>(v: &'t Val<'a>) -> Option<&'t [Val<'a>]> {
    v.get_ref().as_array().map(|a| &a[..])
}

/// The tables of a key written as one table (`[key]`) or as an array of them (`[[key]]`, or
/// `key = [{…}]`): flyctl reads both shapes. With the key as written, for messages.
fn tables<'t, 'a>(key: &str, v: Option<&'t Val<'a>>) -> (String, Vec<&'t DeTable<'a>>) {
    match v.map(Spanned::get_ref) {
        Some(DeValue::Table(t)) => (format!("[{key}]"), vec![t]),
        Some(DeValue::Array(a)) => (format!("[[{key}]]"), a.iter().filter_map(as_table).collect()),
        _ => (String::new(), Vec::new()),
    }
}

/// A scalar as the text a worker var would hold (`5` and `"5"` alike).
fn as_text(v: &Val<'_>) -> Option<String> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(_) => as_int(v).map(|i| i.to_string()),
        DeValue::Float(f) => Some(f.as_str().to_owned()),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn line(src: &str, span: Range<usize>) -> Option<usize> {
    Some(import::line_of(src, span.start))
}

/// Go-style durations as Fly writes them: "5s", "1m30s", "500ms".
fn go_duration_ms(text: &str) -> Option<u64> {
    let mut total: f64 = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let n: f64 = num.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += n * factor;
        rest = tail;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a duration in ms, checked finite and non-negative")]
    (total.is_finite() && total >= 0.0).then_some(total.round() as u64)
}

fn ms_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{ms} ms") }
}

/// wrangler.json / wrangler.jsonc as the tree the checks read, its spans in the JSON text.
/// Comments and trailing commas are allowed, as wrangler allows them; a `null` is left out.
fn parse_jsonc(src: &str) -> Result<Spanned<DeTable<'_>>, (String, Option<Range<usize>>)> {
    let strict = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let parsed = jsonc_parser::parse_to_ast(src, &jsonc_parser::CollectOptions::default(), &strict).map_err(|e| (e.kind().to_string(), Some(e.range().start..e.range().end)))?;
    let value = parsed.value.and_then(json_value);
    let span = value.as_ref().map_or(0..0, Spanned::span);
    match value.map(Spanned::into_inner) {
        Some(DeValue::Table(t)) => Ok(Spanned::new(span, t)),
        _ => Err(("the file is not one JSON object".to_owned(), None)),
    }
}

fn json_value(v: jsonc_parser::ast::Value<'_>) -> Option<Val<'_>> {
    use jsonc_parser::ast::{ObjectPropName, Value};
    let span = |r: jsonc_parser::common::Range| r.start..r.end;
    let (range, value) = match v {
        Value::StringLit(s) => (s.range, DeValue::String(s.value)),
        // A JSON number is a TOML number too: the TOML reader types it (integer or float).
        Value::NumberLit(n) => (n.range, DeValue::parse(n.value).ok()?.into_inner()),
        Value::BooleanLit(b) => (b.range, DeValue::Boolean(b.value)),
        Value::Array(a) => (a.range, DeValue::Array(a.elements.into_iter().filter_map(json_value).collect())),
        Value::Object(o) => {
            let entries = o.properties.into_iter().filter_map(|p| {
                let key = match p.name {
                    ObjectPropName::String(k) => Spanned::new(span(k.range), k.value),
                    ObjectPropName::Word(k) => Spanned::new(span(k.range), k.value.into()),
                };
                Some((key, json_value(p.value)?))
            });
            (o.range, DeValue::Table(entries.collect()))
        }
        Value::NullKeyword(_) => return None,
    };
    Some(Spanned::new(span(range), value))
}


// ------------------------------------------------------------------------------------- output

fn location(f: &Finding) -> String {
    match f.line {
        Some(l) => format!("{}:{l}", f.file),
        None => f.file.clone(),
    }
}

fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "{}[{}]: {}: {}", f.severity.word(), f.id, location(f), f.message);
        let _ = writeln!(out, "  fix: {}", f.fix);
    }
    out
}

fn summary(errors: usize, warnings: usize, infos: usize, deny_warnings: bool, checked: &[String]) -> String {
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    let denied = if deny_warnings && warnings > 0 { " (denied by --deny-warnings)" } else { "" };
    format!(
        "doctor: {}, {}, {}{denied} — checked {}\n",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(infos, "info"),
        checked.join(", ")
    )
}

fn github(findings: &[Finding]) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for f in findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let line = f.line.map(|l| format!(",line={l}")).unwrap_or_default();
        let _ = writeln!(out, "::{command} file={}{line},title={}::{}", prop(&f.file), f.id, data(&format!("{} (fix: {})", f.message, f.fix)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration_ms("5s"), Some(5_000));
        assert_eq!(go_duration_ms("1m30s"), Some(90_000));
        assert_eq!(go_duration_ms("500ms"), Some(500));
        assert_eq!(go_duration_ms("1.5s"), Some(1_500));
        assert_eq!(go_duration_ms("5"), None);
        assert_eq!(go_duration_ms("5 seconds"), None);
        assert_eq!(go_duration_ms(""), None);
    }

    #[test]
    fn github_escapes() {
        let f = Finding { id: "D010", severity: Severity::Info, file: "a,b.toml".into(), line: None, message: "50%\nx".into(), fix: "y".into() };
        assert_eq!(github(&[f]), "::notice file=a%2Cb.toml,title=D010::50%25%0Ax (fix: y)\n");
    }
}

