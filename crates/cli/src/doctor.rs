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
//! Durable Object class [`LIMITER_CLASS`] bound as [`LIMITER_BINDING`], created by a
//! `[[migrations]]` entry listing it in `new_sqlite_classes`.

use core::ops::Range;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use edgeguard_core::Bundle;
use edgeguard_core::observe::short_revision;
use edgeguard_core::bundle::{Route, Scope, method};
use edgeguard_core::routes::Match;
use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::import::{self, Coverage, MethodSync, Methods};
use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Failure, Status, output, policy};

use crate::engine::{self, LIMITER_BINDING, LIMITER_CLASS};
use crate::engine_section;
use crate::{catalog, envcheck};
use std::collections::BTreeMap;

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

// ------------------------------------------------------------------------------ wrangler.toml

fn check_wrangler(cx: &mut Cx<'_>, path: &Path, src: &str, env: Option<&str>) {
    let file = path.display().to_string();
    // Messages name the file as the user wrote it: wrangler.toml, wrangler.json or wrangler.jsonc.
    let name = path.file_name().map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let json = path.extension().is_some_and(|e| e == "json" || e == "jsonc");
    let parsed = if json { parse_jsonc(src) } else { DeTable::parse(src).map_err(|e| (e.message().trim().to_owned(), e.span())) };
    let doc = match parsed {
        Ok(d) => d,
        Err((why, span)) => {
            let at = span.and_then(|s| line(src, s));
            let format = if json { "JSON" } else { "TOML" };
            cx.push("D001", Severity::Error, &file, at, format!("{name} is not valid {format}: {why}"), "fix the syntax; `wrangler deploy` cannot read this file either");
            return;
        }
    };
    let root = doc.get_ref();
    let env_table = env.and_then(|n| lookup(root, &["env", n])).and_then(as_table);
    // Wrangler environments inherit some keys from the top level and not others (vars,
    // durable_objects): https://developers.cloudflare.com/workers/wrangler/environments/
    let pick = |key: &str, inheritable: bool| -> Option<&Val<'_>> {
        match env_table {
            Some(t) => t.get(key).or_else(|| if inheritable { root.get(key) } else { None }),
            None => root.get(key),
        }
    };
    let dir = path.parent().unwrap_or_else(|| Path::new(""));

    // D002/D013/D044/D045: main is the entry of an `edgeguard build` directory, built, whose
    // bundle loads in the engine beside it and is this policy.
    let mut main_text: Option<String> = None;
    let mut built = false;
    match pick("main", true) {
        None => cx.push("D002", Severity::Warning, &file, None, format!("{name} has no `main`: wrangler does not know which script to deploy"), format!("run `edgeguard build {} -o edge` and set `main = \"{BUILT_ENTRY}\"`", cx.policy_file)),
        Some(v) => {
            let main = as_str(v).unwrap_or_default();
            let at = line(src, v.span());
            let main_path = dir.join(main);
            let build_dir = main_path.parent().unwrap_or_else(|| Path::new(""));
            main_text = std::fs::read_to_string(&main_path).ok();
            let ours = build_dir.join(engine::MANIFEST).is_file();
            built = ours || main_text.is_some();
            let entry = main_path.file_name().is_some_and(|n| n == engine::ENTRY);
            if ours && entry {
                check_build_dir(cx, &file, at, build_dir);
            } else if ours || main.ends_with("crates/worker/js/shell.mjs") {
                let why = if ours { "the shell of a build, without its policy: the entry is index.mjs" } else { "the shell's source, without the engine and a policy bundle next to it" };
                cx.push("D002", Severity::Warning, &file, at, format!("`main = \"{main}\"` is {why}"), format!("set `main` to the index.mjs `edgeguard build {} -o DIR` writes", cx.policy_file));
            } else if main_text.is_none() {
                cx.push(
                    "D013",
                    Severity::Info,
                    &file,
                    at,
                    format!("{} does not exist yet", main_path.display()),
                    format!("build it before `wrangler deploy`: edgeguard build {} -o {}", cx.policy_file, build_dir.display()),
                );
            } else {
                cx.push("D002", Severity::Warning, &file, at, format!("`main = \"{main}\"` is not a worker `edgeguard build` wrote (no {} beside it)", engine::MANIFEST), format!("run `edgeguard build {} -o edge` and set `main = \"{BUILT_ENTRY}\"`", cx.policy_file));
            }
        }
    }

    // D046: the rule that uploads the bundle as a Data module.
    let data_rule = root.get("rules").and_then(as_array).unwrap_or_default().iter().filter_map(as_table).any(|r| {
        let globs = r.get("globs").and_then(as_array).unwrap_or_default();
        crate::wrangler::is_bundle_rule(r.get("type").and_then(as_str), globs.iter().filter_map(as_str))
    });
    if built && !data_rule {
        let merge = if json { "" } else { " (or run edgeguard build with --wrangler-toml)" };
        cx.push(
            "D046",
            Severity::Error,
            &file,
            None,
            format!("{name} has no Data rule for `.egb` files: wrangler cannot bundle the worker's policy.egb and `wrangler deploy` fails"),
            format!("add `rules = [{{ type = \"Data\", globs = [\"{}\"], fallthrough = true }}]`{merge}", engine::DATA_RULE_GLOB),
        );
    }

    // D007: compatibility_date.
    match pick("compatibility_date", true) {
        None => cx.push("D007", Severity::Error, &file, None, format!("{name} has no `compatibility_date`: `wrangler deploy` refuses to deploy without one"), "add `compatibility_date = \"2025-09-01\"` (the date the worker was tested with)"),
        Some(v) => {
            let ok = match v.get_ref() {
                DeValue::String(s) => is_date(s),
                DeValue::Datetime(_) => true,
                _ => false,
            };
            if !ok {
                cx.push("D007", Severity::Error, &file, line(src, v.span()), "`compatibility_date` is not a date (YYYY-MM-DD)", "write it as `compatibility_date = \"2025-09-01\"`");
            }
        }
    }

    // Vars.
    let vars = pick("vars", false).and_then(as_table);
    let origin_names: Vec<&str> = cx.bundle.origins.iter().map(|o| o.name.as_str()).collect();
    let names_text = if origin_names.is_empty() { "none".to_owned() } else { origin_names.join(", ") };
    if let Some(v) = vars.and_then(|t| t.get("EDGE_ACTIVE_ORIGIN")) {
        let value = as_text(v).unwrap_or_default();
        let name = value.trim();
        if !name.is_empty() && !origin_names.contains(&name) {
            cx.push(
                "D008",
                Severity::Error,
                &file,
                line(src, v.span()),
                format!("EDGE_ACTIVE_ORIGIN = \"{name}\" names no origin of the policy ({names_text}): {IGNORED_OVERRIDE}"),
                format!("set it to one of {names_text}, or \"\" to use [deploy] active"),
            );
        }
    }
    if let Some(v) = vars.and_then(|t| t.get("EDGE_CANARY_PERCENT")) {
        let value = as_text(v).unwrap_or_default();
        let text = value.trim();
        if !text.is_empty() {
            match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => {
                    if p > 0.0 && cx.bundle.deploy.canary.is_none() {
                        cx.push(
                            "D016",
                            Severity::Warning,
                            &file,
                            line(src, v.span()),
                            format!("EDGE_CANARY_PERCENT = \"{text}\" has no effect: the policy has no [deploy] canary"),
                            "add `canary = { origin = \"green\", percent = 0 }` to [deploy], or clear the var",
                        );
                    }
                }
                _ => cx.push(
                    "D009",
                    Severity::Error,
                    &file,
                    line(src, v.span()),
                    format!("EDGE_CANARY_PERCENT = \"{text}\" is not a number from 0 to 100: {IGNORED_OVERRIDE}"),
                    "set a share from 0 to 100 (e.g. \"5\"), or \"\" to use [deploy] canary.percent",
                ),
            }
        }
    }
    if let Some(v) = vars.and_then(|t| t.get("EDGE_SHADOW")) {
        let value = as_text(v).unwrap_or_default();
        if matches!(value.trim(), "1" | "true" | "yes" | "on") {
            cx.push("D014", Severity::Warning, &file, line(src, v.span()), "EDGE_SHADOW is on: the edge logs what it would refuse and refuses nothing", "set EDGE_SHADOW = \"\" once the shadow run is over");
        }
    }
    if let Some(v) = vars.and_then(|t| t.get("EDGE_ORIGINS")) {
        let value = as_text(v).unwrap_or_default();
        let at = line(src, v.span());
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, url)) = pair.split_once('=').filter(|(n, _)| !n.trim().is_empty()) else {
                cx.push("D015", Severity::Warning, &file, at, format!("EDGE_ORIGINS entry `{pair}` is not `name=url`: the worker ignores it"), "write entries as name=https://…, separated by commas");
                continue;
            };
            let (name, url) = (name.trim(), url.trim());
            if name != "*" && !origin_names.contains(&name) {
                cx.push("D015", Severity::Warning, &file, at, format!("EDGE_ORIGINS names `{name}`, which is not an origin of the policy ({names_text}): the worker ignores it"), format!("use one of {names_text}, or `*` for all"));
            }
            if !url.to_ascii_lowercase().starts_with("https://") {
                cx.push("D015", Severity::Warning, &file, at, format!("EDGE_ORIGINS sends `{name}` to `{url}`, which is not https"), "use the origin's https:// URL");
            }
            cx.origin_overrides.push(url.trim_end_matches('/').to_ascii_lowercase());
        }
    }
    // D010: secrets in plain text, in any environment's vars.
    let mut var_tables: Vec<(String, &DeTable<'_>)> = Vec::new();
    if let Some(t) = root.get("vars").and_then(as_table) {
        var_tables.push(("[vars]".to_owned(), t));
    }
    if let Some(envs) = root.get("env").and_then(as_table) {
        for (env_name, e) in envs.iter() {
            if let Some(t) = as_table(e).and_then(|e| e.get("vars")).and_then(as_table) {
                var_tables.push((format!("[env.{}.vars]", env_name.get_ref()), t));
            }
        }
    }
    for (where_, t) in var_tables {
        for (k, _) in t.iter() {
            let var = k.get_ref();
            let (severity, what, public) = match secret_var(var) {
                Some(Secret::Known(what)) => (Severity::Error, format!("{what} is then in plain text"), ""),
                Some(Secret::Named(suffix)) => (Severity::Warning, format!("its name ends in {suffix}, like a secret's, and a var is in plain text"), "; a value that is public (a publishable key) can stay"),
                None => continue,
            };
            cx.push(
                "D010",
                severity,
                &file,
                line(src, k.span()),
                format!("{var} is in {where_}: {what} in the repository and the dashboard"),
                format!("remove it from {name} and run `wrangler secret put {var}` (rotate it if it was committed){public}"),
            );
        }
    }

    // D003–D006, D017: the Durable Object a global limit needs.
    let global: Vec<&str> = cx.bundle.limits.iter().filter(|l| matches!(l.scope, Scope::Global)).map(|l| l.name.as_str()).collect();
    let bindings: Vec<(Option<&str>, Option<&str>, Option<usize>)> = pick("durable_objects", false)
        .and_then(as_table)
        .and_then(|t| t.get("bindings"))
        .and_then(as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| {
            let t = as_table(b)?;
            Some((t.get("name").and_then(as_str), t.get("class_name").and_then(as_str), line(src, b.span())))
        })
        .collect();
    let migrations = root.get("migrations").and_then(as_array).unwrap_or_default();
    let migrated = |key: &str| {
        migrations.iter().filter_map(as_table).any(|m| {
            m.get(key).and_then(as_array).is_some_and(|list| list.iter().any(|c| as_str(c) == Some(LIMITER_CLASS)))
        })
    };
    let class_bound = bindings.iter().find(|(_, class, _)| *class == Some(LIMITER_CLASS));
    if !global.is_empty() {
        let scope_line = cx.policy_doc.and_then(|d| first_global_scope(d)).map(|s| import::line_of(cx.policy_src, s.start));
        let at_policy = scope_line.map_or_else(|| cx.policy_file.to_owned(), |l| format!("{}:{l}", cx.policy_file));
        let limits = global.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let correct = bindings.iter().any(|(n, c, _)| *n == Some(LIMITER_BINDING) && *c == Some(LIMITER_CLASS));
        if !correct {
            let (msg, at) = match (class_bound, bindings.iter().find(|(n, _, _)| *n == Some(LIMITER_BINDING))) {
                (Some((name, _, at)), _) => (format!("the {LIMITER_CLASS} binding is named `{}`; the worker looks for `{LIMITER_BINDING}`", name.unwrap_or("")), *at),
                (None, Some((_, class, at))) => (format!("binding `{LIMITER_BINDING}` is bound to class `{}`, not `{LIMITER_CLASS}`", class.unwrap_or("")), *at),
                (None, None) => (format!("global limit(s) {limits} ({at_policy}) need a Durable Object binding `{LIMITER_BINDING}` of class `{LIMITER_CLASS}`, and {name} has none"), None),
            };
            cx.push(
                "D003",
                Severity::Error,
                &file,
                at,
                msg,
                format!("add [[durable_objects.bindings]] with name = \"{LIMITER_BINDING}\" and class_name = \"{LIMITER_CLASS}\""),
            );
        }
        let sqlite = migrated("new_sqlite_classes");
        if !sqlite && migrated("new_classes") {
            cx.push(
                "D005",
                Severity::Warning,
                &file,
                None,
                format!("{LIMITER_CLASS} is created with `new_classes` (key-value storage backend) instead of `new_sqlite_classes`"),
                "for a new deployment, list it in `new_sqlite_classes` (a class's storage backend cannot be changed once deployed)",
            );
        } else if !sqlite {
            cx.push(
                "D004",
                Severity::Error,
                &file,
                None,
                format!("global limit(s) {limits} ({at_policy}) need the {LIMITER_CLASS} class created by a migration, and no [[migrations]] entry lists it in `new_sqlite_classes`"),
                format!("add [[migrations]] with tag = \"v1\" and new_sqlite_classes = [\"{LIMITER_CLASS}\"]"),
            );
        }
    } else if let Some((_, _, at)) = class_bound {
        cx.push(
            "D017",
            Severity::Info,
            &file,
            *at,
            format!("an {LIMITER_CLASS} Durable Object is bound, but the policy has no `scope = \"global\"` limit"),
            "remove the binding, or keep it for a global limit to come",
        );
    }
    if let (Some((_, _, at)), Some(text)) = (class_bound, &main_text)
        && !text.contains(LIMITER_CLASS)
    {
        cx.push(
            "D006",
            Severity::Error,
            &file,
            *at,
            format!("{name} binds the Durable Object class {LIMITER_CLASS}, but `main` does not export it: `wrangler deploy` fails"),
            "build the worker with an edgeguard that has the global limiter, or remove the binding and keep limits `scope = \"local\"`",
        );
    }

    // D018/D019: the Workers Rate Limiting binding a `scope = "cloudflare"` limit needs.
    let mut rate_bindings: Vec<RateBinding<'_>> = Vec::new();
    let unsafe_bindings = pick("unsafe", false).and_then(as_table).and_then(|t| t.get("bindings")).and_then(as_array).unwrap_or_default();
    let ratelimits = pick("ratelimits", false).and_then(as_array).unwrap_or_default();
    for (b, needs_type) in ratelimits.iter().map(|b| (b, false)).chain(unsafe_bindings.iter().map(|b| (b, true))) {
        let Some(t) = as_table(b) else { continue };
        if needs_type && t.get("type").and_then(as_str) != Some("ratelimit") {
            continue;
        }
        let Some(name) = t.get("name").and_then(as_str) else { continue };
        let simple = t.get("simple").and_then(as_table);
        let limit = simple.and_then(|s| s.get("limit")).and_then(as_int);
        let period = simple.and_then(|s| s.get("period")).and_then(as_int);
        rate_bindings.push((name, limit, period, line(src, b.span())));
    }
    for l in cx.bundle.limits.iter().filter(|l| matches!(l.scope, Scope::Cloudflare)) {
        let want = rate_limit_binding(&l.name);
        match rate_bindings.iter().find(|(n, _, _, _)| *n == want) {
            None => cx.push(
                "D018",
                Severity::Error,
                &file,
                None,
                format!("limit `{}` has scope = \"cloudflare\" but {name} has no rate-limit binding `{want}`: the worker cannot ask it, and the limit's on_error decides every request", l.name),
                format!("add [[ratelimits]] with name = \"{want}\", a namespace_id and simple = {{ limit = {}, period = {} }}", l.count, l.window_secs),
            ),
            Some((_, limit, period, at)) => {
                if *limit != i64::try_from(l.count).ok() || *period != i64::try_from(l.window_secs).ok() {
                    let shown = |v: &Option<i64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
                    cx.push(
                        "D019",
                        Severity::Warning,
                        &file,
                        *at,
                        format!("binding `{want}` counts {} per {} s but limit `{}` says {} per {} s: Cloudflare enforces the binding's numbers", shown(limit), shown(period), l.name, l.count, l.window_secs),
                        format!("set simple = {{ limit = {}, period = {} }}", l.count, l.window_secs),
                    );
                }
            }
        }
    }

    // D011: every host of the policy is routed to this worker.
    check_routes(cx, &file, &name, src, pick("routes", true), pick("route", true));

    // D012: a [build] command that does not build the policy bundle.
    if let Some(v) = pick("build", true).and_then(as_table).and_then(|t| t.get("command")) {
        let command = as_str(v).unwrap_or_default();
        if !command.contains("edgeguard build") {
            cx.push(
                "D012",
                Severity::Info,
                &file,
                line(src, v.span()),
                format!("`wrangler deploy` runs the [build] command `{command}`, which does not build the policy bundle: the worker deploys with whatever policy its directory was last built with"),
                format!("make the command `npx edgeguard build {} -o edge`, or drop it and build before deploying", cx.policy_file),
            );
        }
    }
}

/// D044/D045: a directory `edgeguard build` wrote — its bundle must load in the engine beside
/// it (else every request is answered 503 `edge-misconfigured`), and be this policy's.
fn check_build_dir(cx: &mut Cx<'_>, file: &str, at: Option<usize>, dir: &Path) {
    let rebuild = format!("rebuild it: edgeguard build {} -o {}", cx.policy_file, dir.display());
    // Every module the entry imports must be there, or wrangler cannot bundle the worker.
    let entry = std::fs::read_to_string(dir.join(engine::ENTRY)).unwrap_or_default();
    let wanted = [engine::ENTRY, engine::SHELL, engine::GLUE, engine::WASM, engine::POLICY]
        .into_iter()
        .chain(entry.contains(&format!("./{}", engine::SHADOW)).then_some(engine::SHADOW));
    let missing: Vec<&str> = wanted.filter(|f| !dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        let msg = format!("{} is not a complete edgeguard build (no {}): the worker cannot load a policy", dir.display(), missing.join(", "));
        cx.push("D044", Severity::Error, file, at, msg, rebuild);
        return;
    }
    let wasm = std::fs::read(dir.join(engine::WASM));
    let bundle = std::fs::read(dir.join(engine::POLICY));
    let (wasm, bundle) = match (wasm, bundle) {
        (Ok(w), Ok(b)) => (w, b),
        (Err(e), _) | (_, Err(e)) => {
            let msg = format!("{} is not a complete edgeguard build ({}): the worker cannot load a policy", dir.display(), output::without_os_codes(&e.to_string()));
            cx.push("D044", Severity::Error, file, at, msg, rebuild);
            return;
        }
    };
    let Some(section) = engine_section::read(&wasm) else {
        let msg = format!("{} is not an edgeguard engine", dir.join(engine::WASM).display());
        cx.push("D044", Severity::Error, file, at, msg, rebuild);
        return;
    };
    let refused = |why: String| format!("{}: {why}; deployed, the edge answers every request 503 edge-misconfigured", dir.join(engine::POLICY).display());
    let loaded = match edgeguard_core::bundle::read_header(&bundle) {
        Err(e) => Err(e.to_string()),
        Ok(h) if h.format != section.format => Err(format!(
            "bundle format {} cannot be read by the engine beside it (edgeguard {}, format {})",
            h.format, section.version, section.format
        )),
        // The engine reads the format this CLI writes: load it exactly as the engine will.
        Ok(_) if section.format == edgeguard_core::FORMAT_VERSION => Bundle::from_bytes(&bundle).map_err(|e| e.to_string()),
        Ok(_) => return, // another edgeguard's engine and bundle that agree: its own loader decides
    };
    match loaded {
        Err(why) => cx.push("D044", Severity::Error, file, at, refused(why), rebuild),
        Ok(built) if built.revision != cx.bundle.revision => {
            let msg = format!(
                "{} holds revision {}… ({}, {}), not the revision {}… of {} for {}",
                dir.display(),
                short_revision(&built),
                built.app.name,
                built.app.environment,
                short_revision(cx.bundle),
                cx.policy_file,
                cx.bundle.app.environment
            );
            // Another environment's policy would go live (staging's routes in production): an
            // error. The same environment at another revision is a build to refresh.
            let severity = if built.app.environment == cx.bundle.app.environment { Severity::Warning } else { Severity::Error };
            cx.push("D045", severity, file, at, msg, rebuild);
        }
        Ok(_) => {}
    }
}

/// The binding the worker asks for a `scope = "cloudflare"` limit: `EDGEGUARD_RL_` and the
/// limit's name upper-cased, other characters as `_` (as crates/worker/js/shell.mjs does).
pub fn rate_limit_binding(limit: &str) -> String {
    let name: String = limit.chars().map(|c| c.to_ascii_uppercase()).map(|c| if c.is_ascii_uppercase() || c.is_ascii_digit() { c } else { '_' }).collect();
    format!("EDGEGUARD_RL_{name}")
}

/// Why a worker var should be a secret.
enum Secret {
    /// A secret the worker reads (crates/worker/js/shell.mjs), and what it is.
    Known(&'static str),
    /// A name that ends like a secret's (`_KEY`, …): the suffix.
    Named(&'static str),
}

/// Whether a var named `var` holds a secret. edgeguard's own levers (`EDGE_ACTIVE_ORIGIN`,
/// `EDGE_CANARY_PERCENT`, `EDGE_SHADOW`, `EDGE_ORIGINS`, `EDGE_ORIGIN_AUTH_HEADER`,
/// `EDGE_POSTHOG_HOST`) are not, and none ends like a secret's name.
fn secret_var(var: &str) -> Option<Secret> {
    match var {
        "EDGE_ORIGIN_AUTH" => Some(Secret::Known("the origin's shared secret")),
        "POSTHOG_KEY" => Some(Secret::Known("the PostHog project key")),
        _ => {
            let upper = var.to_ascii_uppercase();
            ["_KEY", "_SECRET", "_TOKEN", "_PASSWORD", "_AUTH"].into_iter().find(|s| upper.ends_with(s)).map(Secret::Named)
        }
    }
}

/// A Workers Rate Limiting binding: name, `simple.limit`, `simple.period`, line.
type RateBinding<'a> = (&'a str, Option<i64>, Option<i64>, Option<usize>);

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// Span of the first `scope = "global"` in the policy (a named, inline or overlay limit).
fn first_global_scope(table: &DeTable<'_>) -> Option<Range<usize>> {
    for (k, v) in table.iter() {
        if k.get_ref() == "scope" && as_str(v) == Some("global") {
            return Some(v.span());
        }
        let found = match v.get_ref() {
            DeValue::Table(t) => first_global_scope(t),
            DeValue::Array(a) => a.iter().filter_map(as_table).find_map(first_global_scope),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routed {
    Fully,
    Partly,
    No,
}

/// Whether a wrangler route pattern (`host/path*`, or a custom domain) takes every request for
/// `host`.
fn route_covers(pattern: &str, custom_domain: bool, host: &str) -> Routed {
    let p = pattern.trim();
    let p = p.strip_prefix("https://").or_else(|| p.strip_prefix("http://")).unwrap_or(p);
    let (host_pat, path) = p.split_once('/').map_or((p, ""), |(h, rest)| (h, rest));
    let host_pat = host_pat.split(':').next().unwrap_or(host_pat).to_ascii_lowercase();
    let host_ok = if let Some(suffix) = host_pat.strip_prefix('*') { host.ends_with(suffix) } else { host_pat == host };
    if !host_ok {
        return Routed::No;
    }
    if (custom_domain && path.is_empty()) || path == "*" {
        Routed::Fully
    } else {
        Routed::Partly
    }
}

fn check_routes(cx: &mut Cx<'_>, file: &str, name: &str, src: &str, routes: Option<&Val<'_>>, route: Option<&Val<'_>>) {
    let hosts = cx.bundle.app.hosts.clone();
    if hosts.is_empty() {
        return;
    }
    let mut patterns: Vec<(String, bool)> = Vec::new();
    let mut add = |v: &Val<'_>| match v.get_ref() {
        DeValue::String(s) => patterns.push((s.to_string(), false)),
        DeValue::Table(t) => {
            if let Some(p) = t.get("pattern").and_then(as_str) {
                let custom = t.get("custom_domain").and_then(|c| c.get_ref().as_bool()).unwrap_or(false);
                patterns.push((p.to_owned(), custom));
            }
        }
        _ => {}
    };
    let at = routes.or(route).and_then(|v| line(src, v.span()));
    if let Some(list) = routes.and_then(as_array) {
        list.iter().for_each(&mut add);
    }
    if let Some(r) = route {
        add(r);
    }
    for host in &hosts {
        let best = patterns.iter().map(|(p, c)| (route_covers(p, *c, host), p)).min_by_key(|(r, _)| match r {
            Routed::Fully => 0,
            Routed::Partly => 1,
            Routed::No => 2,
        });
        match best {
            Some((Routed::Fully, _)) => {}
            Some((Routed::Partly, p)) => cx.push(
                "D011",
                Severity::Warning,
                file,
                at,
                format!("only `{p}` of {host} (in app.hosts) is routed to the worker: other paths reach the origin without the edge, or not at all"),
                format!("route the whole host: {{ pattern = \"{host}\", custom_domain = true }} or \"{host}/*\""),
            ),
            _ => cx.push(
                "D011",
                Severity::Warning,
                file,
                at,
                format!("{host} is in the policy's app.hosts but no route or custom domain in {name} sends it to the worker"),
                format!("add {{ pattern = \"{host}\", custom_domain = true }} to `routes` (or remove the host from app.hosts)"),
            ),
        }
    }
}

// ----------------------------------------------------------------------------------- fly.toml

/// One HTTP health check of fly.toml.
struct Check {
    /// `[[http_service.checks]]`, `[checks.name]`, …
    label: String,
    path: Option<(String, Option<usize>)>,
    method: String,
    timeout: Option<(u64, Option<usize>)>,
}

fn check_fly(cx: &mut Cx<'_>, file: &str, src: &str) {
    let doc = match DeTable::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let at = e.span().and_then(|s| line(src, s));
            cx.push("D020", Severity::Error, file, at, format!("fly.toml is not valid TOML: {}", e.message().trim()), "fix the syntax; `fly deploy` cannot read this file either");
            return;
        }
    };
    let root = doc.get_ref();
    let http = root.get("http_service");
    let http_t = http.and_then(as_table);
    let (_, services) = tables("services", root.get("services"));

    // D021/D036: the port Fly's proxy forwards to.
    let port = http_t.and_then(|t| t.get("internal_port")).and_then(as_int).or_else(|| services.iter().find_map(|s| s.get("internal_port").and_then(as_int)));
    match (http_t, port) {
        (_, Some(_)) => {}
        (Some(_), None) => cx.push("D021", Severity::Error, file, http.and_then(|v| line(src, v.span())), "[http_service] has no `internal_port`: Fly's proxy does not know where the app listens", "add `internal_port = 3000` (the port `next start` listens on)"),
        (None, None) => cx.push("D021", Severity::Error, file, None, "fly.toml has no [http_service] (or [[services]]) with an `internal_port`: the app is not reachable over HTTP, so the edge has no origin", "add [http_service] with internal_port = 3000 and force_https = true"),
    }
    if let (Some(port), Some(v)) = (port, lookup(root, &["env", "PORT"])) {
        let env_port = as_text(v).unwrap_or_default();
        if env_port.trim() != port.to_string() {
            cx.push("D036", Severity::Warning, file, line(src, v.span()), format!("[env] PORT = {} but internal_port = {port}: the app listens on one port and Fly forwards to the other (502 at the edge)", env_port.trim()), "make them the same port");
        }
    }

    // D022: force_https.
    if let Some(t) = http_t {
        let force = t.get("force_https");
        let on = force.and_then(|v| v.get_ref().as_bool()).unwrap_or(false);
        let at = force.and_then(|v| line(src, v.span()));
        let (msg, fix) = if on {
            ("force_https = true: Fly also redirects http to https; the edge already does for its own traffic, so this only affects requests straight to the Fly app", "nothing to do; either setting is fine behind the edge")
        } else {
            ("force_https is off: requests straight to the Fly app over http are not redirected (the edge redirects its own traffic)", "set force_https = true so the app's own hostname is https-only too")
        };
        cx.push("D022", Severity::Info, file, at, msg, fix);
    }

    // D032: machines that stop when idle, while the edge expects probes answered quickly.
    let stop_cfg = http_t.map(|t| (t.get("auto_stop_machines"), t.get("min_machines_running")));
    if let (Some((Some(stop), min)), Some(health)) = (stop_cfg, cx.bundle.health.as_ref()) {
        let stops = match stop.get_ref() {
            DeValue::Boolean(b) => *b,
            DeValue::String(s) => matches!(s.as_ref(), "stop" | "suspend"),
            _ => false,
        };
        let min_running = min.and_then(as_int).unwrap_or(0);
        if stops && min_running <= 0 {
            let timeout = ms_text(health.timeout_ms);
            let at_policy = cx.policy_at(&["health", "timeout"]);
            cx.push(
                "D032",
                Severity::Warning,
                file,
                line(src, stop.span()),
                format!("auto_stop_machines stops every Machine when idle (min_machines_running = {min_running}), but the edge's health probe expects an answer within {timeout} ({at_policy}): after a quiet spell the first probe and the first visitors wait for a cold start"),
                "set min_machines_running = 1 (or auto_stop_machines = \"suspend\" for faster resumes)",
            );
        }
    }

    // Health checks.
    let mut checks: Vec<Check> = Vec::new();
    let read_check = |label: String, t: &DeTable<'_>| Check {
        label,
        path: t.get("path").and_then(|v| Some((as_str(v)?.to_owned(), line(src, v.span())))),
        method: t.get("method").and_then(as_str).unwrap_or("GET").to_ascii_uppercase(),
        timeout: t.get("timeout").and_then(|v| Some((go_duration_ms(as_str(v)?)?, line(src, v.span())))),
    };
    let (label, list) = tables("http_service.checks", http_t.and_then(|t| t.get("checks")));
    checks.extend(list.into_iter().map(|t| read_check(label.clone(), t)));
    for s in &services {
        let (label, list) = tables("services.http_checks", s.get("http_checks"));
        checks.extend(list.into_iter().map(|t| read_check(label.clone(), t)));
    }
    if let Some(named) = root.get("checks").and_then(as_table) {
        for (name, v) in named.iter() {
            if let Some(t) = as_table(v).filter(|t| t.get("type").and_then(as_str).is_none_or(|ty| ty == "http")) {
                checks.push(read_check(format!("[checks.{}]", name.get_ref()), t));
            }
        }
    }
    if checks.is_empty() {
        cx.push(
            "D035",
            Severity::Warning,
            file,
            http.and_then(|v| line(src, v.span())),
            "fly.toml has no HTTP health check: Fly keeps routing to a Machine whose app has hung",
            "add [[http_service.checks]] with path = \"/api/health\", interval = \"15s\", timeout = \"5s\"",
        );
    }
    for c in &checks {
        if let Some((path, at)) = &c.path {
            check_health_path(cx, file, *at, &c.label, path, &c.method);
        }
    }
    if let Some(h) = cx.bundle.health.clone() {
        let paths: Vec<&Check> = checks.iter().filter(|c| c.path.as_ref().is_some_and(|(p, _)| strip_query(p) == h.probe_path)).collect();
        if paths.is_empty()
            && let Some(first) = checks.iter().find_map(|c| c.path.as_ref())
        {
            cx.push(
                "D028",
                Severity::Info,
                file,
                first.1,
                format!("Fly checks `{}` but the edge probes `{}` ({}): two definitions of healthy", first.0, h.probe_path, cx.policy_at(&["health", "probe_path"])),
                "point both at the same endpoint (QuoteKit: /api/health)",
            );
        }
        let compared = if paths.is_empty() { checks.iter().collect() } else { paths };
        for c in compared {
            let Some((fly_ms, at)) = c.timeout else { continue };
            let edge = ms_text(h.timeout_ms);
            let at_policy = cx.policy_at(&["health", "timeout"]);
            if h.timeout_ms > fly_ms {
                cx.push(
                    "D029",
                    Severity::Warning,
                    file,
                    at,
                    format!("the edge waits {edge} for a probe answer ({at_policy}) but Fly's check gives up after {}: the edge reports healthy an origin Fly is already replacing", ms_text(fly_ms)),
                    format!("set health.timeout to {} or less", ms_text(fly_ms)),
                );
            } else if h.timeout_ms < fly_ms {
                cx.push(
                    "D030",
                    Severity::Info,
                    file,
                    at,
                    format!("Fly's check allows {} but the edge's probe only {edge} ({at_policy}): an origin answering in between is healthy to Fly and failing at the edge", ms_text(fly_ms)),
                    "fine when the edge's timeout is the stricter target on purpose; otherwise align them",
                );
            }
        }
    }

    // D031: a release command that builds.
    if let Some(v) = lookup(root, &["deploy", "release_command"]) {
        let command = as_str(v).unwrap_or_default();
        let builds = regex_lite::Regex::new(r"(?:^|[\s;&|(])(?:(?:npm|pnpm|bun)\s+(?:run\s+)?build|yarn\s+(?:run\s+)?build|(?:npx\s+|pnpm\s+exec\s+)?next\s+build|turbo\s+(?:run\s+)?build)\b")
            .is_ok_and(|re| re.is_match(command));
        if builds {
            cx.push(
                "D031",
                Severity::Error,
                file,
                line(src, v.span()),
                format!("release_command `{command}` builds the app: it runs in a temporary Machine before each deploy, and its build is thrown away with it (slow deploys, and a failed build blocks releases)"),
                "build in the Dockerfile (`RUN npm run build`); keep release_command for one-off tasks such as database migrations, or remove it",
            );
        }
    }

    // D033/D034: the Fly app is one of the policy's origins.
    match root.get("app") {
        Some(v) => {
            let app = as_str(v).unwrap_or_default();
            let expected = format!("https://{}.fly.dev", app.to_ascii_lowercase());
            let urls: Vec<String> = cx
                .bundle
                .origins
                .iter()
                .map(|o| o.url.trim_end_matches('/').to_ascii_lowercase())
                .chain(cx.origin_overrides.iter().cloned())
                .collect();
            if !urls.contains(&expected) {
                let list = cx.bundle.origins.iter().map(|o| format!("{} = {}", o.name, o.url)).collect::<Vec<_>>().join(", ");
                cx.push(
                    "D033",
                    Severity::Warning,
                    file,
                    line(src, v.span()),
                    format!("app = \"{app}\" is served at {expected}, which is not an origin of the policy ({}): the edge forwards to another app", if list.is_empty() { "none".to_owned() } else { list }),
                    format!("set an origin's url to \"{expected}\" (or point EDGE_ORIGINS at it), or fix `app`"),
                );
            }
        }
        None => cx.push("D034", Severity::Info, file, None, "fly.toml has no `app`, so its origin URL cannot be compared with the policy's", "add `app = \"<name>\"` (as `fly launch` writes it)"),
    }
}

fn strip_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// D023–D027: what the edge does to the path Fly checks, for uptime monitors that check it
/// through the edge.
fn check_health_path(cx: &mut Cx<'_>, file: &str, at: Option<usize>, label: &str, raw: &str, fly_method: &str) {
    let path = strip_query(raw);
    let bundle = cx.bundle;
    if let Some(h) = bundle.health.as_ref().filter(|h| h.path == path) {
        cx.push(
            "D027",
            Severity::Error,
            file,
            at,
            format!("{label} checks `{path}`, the edge's own health endpoint: Fly's checks go to the Machines directly, and the app does not serve it"),
            format!("check the app's health route instead (the edge probes `{}`)", h.probe_path),
        );
        return;
    }
    let Ok(normal) = edgeguard_core::sanitize::normalize_path(path) else { return };
    let segments: Vec<&str> = normal.split('/').filter(|s| !s.is_empty()).collect();
    let Ok(regexes) = import::Regexes::of(bundle) else { return };
    let (route, name): (&Route, String) = match bundle.matcher.find(&segments, &regexes) {
        Match::Route(i) => match bundle.routes.get(i as usize) {
            Some(r) => (r, format!("route `{}`", r.pattern.as_deref().unwrap_or(""))),
            None => return,
        },
        Match::ParamMismatch(i) => {
            let p = bundle.routes.get(i as usize).and_then(|r| r.pattern.clone()).unwrap_or_default();
            cx.push("D026", Severity::Error, file, at, format!("{label} path `{path}` gets 404 at the edge: a parameter of route `{p}` does not accept it"), "give the health path a route of its own with limit = \"none\"");
            return;
        }
        Match::None => (&bundle.defaults, "[defaults]".to_owned()),
    };
    let why = "Fly's own checks reach the Machines directly, but an uptime monitor checking through the edge";
    if let Some(status) = route.block {
        cx.push(
            "D023",
            Severity::Error,
            file,
            at,
            format!("{label} path `{path}` is blocked at the edge ({name} answers {status}): {why} sees the app as down"),
            "unblock it: give the health path its own route without `block`",
        );
    }
    if method::bit(fly_method) & route.methods == 0 {
        cx.push(
            "D026",
            Severity::Error,
            file,
            at,
            format!("{label} uses {fly_method}, which {name} does not allow (405 at the edge; it allows {})", import::methods_text(route.methods)),
            format!("check with GET, or allow {fly_method} on the route"),
        );
    }
    let mut access = Vec::new();
    if route.require_cookie.is_some() {
        access.push("require_cookie");
    }
    if route.api_key.is_some() {
        access.push("api_key");
    }
    if !route.ip_allow.is_empty() {
        access.push("ip_allow");
    }
    if !route.require_headers.is_empty() {
        access.push("require_headers");
    }
    if !access.is_empty() {
        cx.push(
            "D025",
            Severity::Error,
            file,
            at,
            format!("{label} path `{path}` is behind {} at the edge ({name}): {why} is refused (401/403/400)", access.join(", ")),
            "give the health path its own route without access rules",
        );
    }
    if let Some(limit) = route.limit.and_then(|i| bundle.limits.get(usize::from(i))).filter(|l| !l.shadow) {
        cx.push(
            "D024",
            Severity::Error,
            file,
            at,
            format!(
                "{label} path `{path}` is rate-limited at the edge by {} of {name} ({} per {} s): {why} is throttled (429) and reports an outage",
                if limit.name.starts_with('/') { "an inline limit".to_owned() } else { format!("limit `{}`", limit.name) },
                limit.count,
                limit.window_secs
            ),
            "give the health path its own route with limit = \"none\"",
        );
    }
}

// ---------------------------------------------------------------------------------- app drift

fn check_app(cx: &mut Cx<'_>, dir: &Path, scan: &import::AppScan) -> Result<(), Failure> {
    check_next_version(cx, dir);
    let routes = import::policy_routes(cx.policy_src);
    let analysis = import::analyse(scan, &routes, cx.bundle)?;
    let policy_file = cx.policy_file;
    let fix_import = format!("run `edgeguard import next {} --policy {policy_file} --write`", dir.display());
    for (app, cov) in scan.routes.iter().zip(&analysis.coverage) {
        let file = app.file.display().to_string();
        let methods = match &app.methods {
            Methods::Known(m) => import::methods_text(*m),
            Methods::Unknown(_) => "methods unknown".to_owned(),
        };
        match cov {
            Coverage::Uncovered { by } => {
                let rule = by.and_then(|i| routes.get(i));
                let falls = rule.map_or_else(|| "[defaults]".to_owned(), |r| format!("the catch-all `{}`", r.path));
                let rule_methods = match rule {
                    Some(r) => {
                        let canonical = import::canonical(&r.segs);
                        cx.bundle.routes.iter().find(|b| b.pattern.as_deref() == Some(canonical.as_str())).map_or(0, |b| b.methods)
                    }
                    None => cx.bundle.defaults.methods,
                };
                let extra = match &app.methods {
                    Methods::Known(m) => rule_methods & !(import::new_route_methods(*m) | method::OPTIONS),
                    Methods::Unknown(_) => 0,
                };
                let consequence = if extra == 0 {
                    "the policy does not know it".to_owned()
                } else {
                    format!("which also lets {} through", import::methods_text(extra))
                };
                cx.push(
                    "D040",
                    Severity::Warning,
                    &file,
                    Some(app.line),
                    format!("the app serves `{}` ({methods}) but the policy has no route for it: it falls to {falls}, {consequence}", app.pattern),
                    fix_import.clone(),
                );
            }
            Coverage::Exact { route, sync: MethodSync::Changed { from, to } } => {
                let Some(r) = routes.get(*route) else { continue };
                let at = r.methods.map_or(r.line, |(_, l)| l);
                let quoted = import::method_names(*to).iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ");
                cx.push(
                    "D042",
                    Severity::Warning,
                    policy_file,
                    Some(at),
                    format!("route `{}` allows {} but {file} exports {methods}", r.path, import::methods_text(*from)),
                    format!("set methods = [{quoted}] (or {fix_import})"),
                );
            }
            _ => {}
        }
        if let Methods::Unknown(why) = &app.methods {
            cx.push("D043", Severity::Info, &file, Some(app.line), format!("the methods of `{}` cannot be read: {why}", app.pattern), "list its methods in the policy route by hand");
        }
    }
    for i in &analysis.stale {
        let Some(r) = routes.get(*i) else { continue };
        cx.push(
            "D041",
            Severity::Warning,
            policy_file,
            Some(r.line),
            format!("route `{}` matches nothing {} serves (no route handler, page, public file or metadata file)", r.path, dir.display()),
            "remove the route if the endpoint is gone; check that --app is the app's root",
        );
    }
    for (file, line, msg) in &scan.notes {
        cx.push("D043", Severity::Info, &file.display().to_string(), Some(*line), msg.clone(), "nothing to do unless the route should exist");
    }
    Ok(())
}

// ------------------------------------------------------------------ the app's Next.js version

/// The Next.js versions whose middleware a request skips by sending `x-middleware-subrequest`
/// (CVE-2025-29927, GHSA-f82v-jwr5-mffw), as an npm range.
const CVE_2025_29927: &str = ">=11.1.4 <12.3.5 || >=13.0.0 <13.5.9 || >=14.0.0 <14.2.25 || >=15.0.0 <15.2.3";

/// Where the version of `next` the app runs is written, most installed first: the package
/// itself, the lock file, and the range package.json asks for.
const NEXT_VERSION_AT: [(&str, &[&str]); 4] = [
    ("node_modules/next/package.json", &["version"]),
    ("package-lock.json", &["packages", "node_modules/next", "version"]),
    ("package.json", &["dependencies", "next"]),
    ("package.json", &["devDependencies", "next"]),
];

/// D047: a Next.js version affected by CVE-2025-29927. An installed version (node_modules, the
/// lock file) is judged when there is one; otherwise the lowest version package.json's range
/// allows.
fn check_next_version(cx: &mut Cx<'_>, dir: &Path) {
    let Ok(affected) = nodejs_semver::Range::parse(CVE_2025_29927) else { return };
    let mut installed = false;
    for (rel, keys) in NEXT_VERSION_AT {
        let declared = rel == "package.json";
        if declared && installed {
            return;
        }
        let path = dir.join(rel);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(doc) = parse_jsonc(&text) else { continue };
        let Some(v) = lookup(doc.get_ref(), keys) else { continue };
        let spec = as_str(v).unwrap_or_default().trim();
        let (version, what) = if declared {
            // A tag (`latest`), an alias or a URL is no range: nothing to judge.
            let Some(lowest) = nodejs_semver::Range::parse(spec).ok().and_then(|r| r.min_version()) else { continue };
            let section = keys.first().copied().unwrap_or_default();
            let what = format!("{rel} asks for next \"{spec}\" ({section}), and no installed version was found: the lowest version it allows, {lowest}, is");
            (lowest, what)
        } else {
            let Ok(version) = nodejs_semver::Version::parse(spec) else { continue };
            installed = true;
            (version, format!("next {spec} is installed ({rel}) and is"))
        };
        if version.satisfies_with_prerelease(&affected, true) {
            cx.push(
                "D047",
                Severity::Error,
                &path.display().to_string(),
                line(&text, v.span()),
                format!("{what} affected by CVE-2025-29927: a request with an `x-middleware-subrequest` header skips the app's middleware and the checks it makes"),
                "upgrade next to 12.3.5 / 13.5.9 / 14.2.25 / 15.2.3 or later; the edge strips x-middleware-subrequest, but a request that bypasses the edge (the *.fly.dev address) reaches the middleware with whatever it carries",
            );
            return;
        }
    }
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
    fn wrangler_route_patterns() {
        assert_eq!(route_covers("lawnquote.online", true, "lawnquote.online"), Routed::Fully);
        assert_eq!(route_covers("lawnquote.online/*", false, "lawnquote.online"), Routed::Fully);
        assert_eq!(route_covers("*lawnquote.online/*", false, "www.lawnquote.online"), Routed::Fully);
        assert_eq!(route_covers("*.lawnquote.online/*", false, "lawnquote.online"), Routed::No);
        assert_eq!(route_covers("lawnquote.online/api/*", false, "lawnquote.online"), Routed::Partly);
        assert_eq!(route_covers("lawnquote.online", false, "lawnquote.online"), Routed::Partly);
        assert_eq!(route_covers("https://example.com/*", false, "lawnquote.online"), Routed::No);
    }

    #[test]
    fn binding_names() {
        assert_eq!(rate_limit_binding("api"), "EDGEGUARD_RL_API");
        assert_eq!(rate_limit_binding("quote-email"), "EDGEGUARD_RL_QUOTE_EMAIL");
        assert_eq!(rate_limit_binding("/api/admin/metrics"), "EDGEGUARD_RL__API_ADMIN_METRICS");
    }

    #[test]
    fn dates() {
        assert!(is_date("2025-09-01"));
        assert!(!is_date("2025-9-1"));
        assert!(!is_date("yesterday!"));
    }

    #[test]
    fn github_escapes() {
        let f = Finding { id: "D010", severity: Severity::Info, file: "a,b.toml".into(), line: None, message: "50%\nx".into(), fix: "y".into() };
        assert_eq!(github(&[f]), "::notice file=a%2Cb.toml,title=D010::50%25%0Ax (fix: y)\n");
    }
}
