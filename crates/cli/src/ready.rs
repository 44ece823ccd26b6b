//! `edgeguard ready`: QuoteKit's deployment roadmap gates (Gate 1 core infrastructure, Gate 2
//! production readiness, Gate 3 deployment ready) as a go/no-go report (docs/ready.md).
//!
//! Each criterion edgeguard can judge gets pass, fail or unknown, a reason, and where it was
//! judged: a file and line, or a request sent to the live edge. Unknown means an input was not
//! given (no `--fly`, no `--url`…) or edgeguard cannot judge it (latency objectives); it is
//! never shown as a pass. Exit 1 when a criterion fails (or one is unknown, with
//! `--deny-unknown`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use edgeguard_compiler::diagnostics::{Diagnostic, line_col};
use edgeguard_core::Bundle;
use edgeguard_core::bundle::method;
use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::doctor::{self, Finding, Severity};
use crate::{CmdResult, Failure, Status, explain, output, policy, test, verify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One block per gate, then the verdict.
    Text,
    /// One JSON object: { verdict, ok, pass, fail, unknown, gates: [...] }.
    Json,
    /// A Markdown report for a pull-request comment or the job summary.
    Markdown,
    /// GitHub Actions workflow commands: `::error` per failed criterion, `::warning` per unknown.
    Github,
}

/// The roadmap's gates as a go/no-go report.
#[derive(Debug, clap::Args)]
#[command(after_help = "Every criterion is pass, fail or unknown, with why and where (file:line or a \
    request). Unknown: an input was not given, or edgeguard cannot judge it. Exit 1 when one fails \
    (or one is unknown, with --deny-unknown), 0 otherwise, 2 for usage errors. See docs/ready.md.\n\n\
    Examples:\n  \
    edgeguard ready policy.toml --wrangler wrangler.toml --fly fly.toml --catalog env.toml \\\n    \
    --fly-secrets secrets.json --cases policy.cases.toml --runbook RUNBOOK.md\n  \
    edgeguard ready policy.toml --fly fly.toml --url https://lawnquote.online --format markdown > ready.md")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// The worker's wrangler.toml (or wrangler.json / wrangler.jsonc).
    #[arg(long, value_name = "WRANGLER_TOML")]
    pub wrangler: Option<PathBuf>,
    /// The app's fly.toml.
    #[arg(long, value_name = "FLY_TOML")]
    pub fly: Option<PathBuf>,
    /// Compile for this environment (overrides `app.environment`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    #[command(flatten)]
    pub inputs: crate::envcheck::CatalogArgs,
    /// Policy test case files (`edgeguard test`): they must pass.
    #[arg(long, value_name = "CASES")]
    pub cases: Vec<PathBuf>,
    /// The runbook that documents a rollback (Markdown or text).
    #[arg(long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// The deployed edge: `verify` runs against it (docs/verify.md).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// With --url: the Host header to send.
    #[arg(long, value_name = "HOST", requires = "url")]
    pub host: Option<String>,
    /// With --url: where the edge answers plain http.
    #[arg(long, value_name = "URL", requires = "url")]
    pub http_url: Option<String>,
    /// With --url: accept any TLS certificate (a local wrangler dev edge).
    #[arg(long, requires = "url")]
    pub insecure: bool,
    /// Exit 1 when a criterion is unknown too.
    #[arg(long)]
    pub deny_unknown: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unknown => "unknown",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Verdict::Pass => "✅",
            Verdict::Fail => "❌",
            Verdict::Unknown => "❔",
        }
    }
}

/// Where a criterion was judged: a file and line, or a request to the live edge.
#[derive(Debug, Clone, Serialize)]
pub struct At {
    /// A file, or a request (`GET https://host/path`).
    pub what: String,
    pub line: Option<usize>,
}

impl At {
    fn file(file: &str, line: Option<usize>) -> At {
        At { what: file.to_owned(), line }
    }

    fn text(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.what),
            None => self.what.clone(),
        }
    }

    fn is_request(&self) -> bool {
        self.what.contains("://")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Verdict,
    pub why: String,
    pub at: Vec<At>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub gate: u8,
    pub title: &'static str,
    pub status: Verdict,
    pub criteria: Vec<Criterion>,
}

#[derive(Serialize)]
struct Report<'a> {
    verdict: &'static str,
    ok: bool,
    policy: &'a str,
    environment: &'a str,
    pass: usize,
    fail: usize,
    unknown: usize,
    gates: &'a [Gate],
}

/// What every criterion reads.
struct Inputs<'a> {
    args: &'a Args,
    policy_file: String,
    policy_src: String,
    doc: Option<toml::Spanned<DeTable<'a>>>,
    bundle: &'a Bundle,
    warnings: Vec<Diagnostic>,
    findings: Vec<Finding>,
    tally: Option<test::Tally>,
    live: Option<verify::Outcome>,
    /// `explain` of GET https://canonical-host/.
    page: Option<edgeguard_core::explain::Explanation>,
}

impl Inputs<'_> {
    /// `policy.toml:LINE` of the value at a key path, when the policy writes it.
    fn policy_at(&self, keys: &[&str]) -> Option<At> {
        let doc = self.doc.as_ref()?;
        let mut table: &DeTable<'_> = doc.get_ref();
        let mut span = None;
        for (i, key) in keys.iter().enumerate() {
            let v = table.get(*key)?;
            span = Some(v.span());
            if i.saturating_add(1) < keys.len() {
                table = v.get_ref().as_table()?;
            }
        }
        span.map(|s| At::file(&self.policy_file, Some(crate::import::line_of(&self.policy_src, s.start))))
    }

    /// The line of a route (`path = "PATTERN"`) in the policy.
    fn route_at(&self, pattern: &str) -> At {
        let needle = format!("path = \"{pattern}\"");
        let line = self.policy_src.find(&needle).map(|at| crate::import::line_of(&self.policy_src, at));
        At::file(&self.policy_file, line)
    }

    fn doctor(&self, ids: &[&str]) -> Vec<&Finding> {
        self.findings.iter().filter(|f| ids.contains(&f.id)).collect()
    }
}

pub fn run(args: &Args) -> CmdResult {
    let doctor_args = doctor::Args {
        policy: args.policy.clone(),
        wrangler: args.wrangler.clone(),
        fly: args.fly.clone(),
        app: None,
        worker: None,
        env: args.env.clone(),
        inputs: args.inputs.clone(),
        deny_warnings: false,
        format: doctor::Format::Text,
    };
    let findings = match doctor::collect(&doctor_args)? {
        Ok(d) => d.findings,
        Err(status) => return Ok(status),
    };
    let compiled = policy::load(&args.policy, args.env.as_deref())?;
    let Some(bundle) = compiled.output.bundle.as_ref() else {
        return Err(Failure::failed(format!("`{}` did not compile", compiled.file)));
    };
    if let Some(runbook) = &args.runbook {
        std::fs::metadata(runbook).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", runbook.display())))?;
    }
    let tally = if args.cases.is_empty() {
        None
    } else {
        match test::tally(&args.policy, &args.cases, args.env.as_deref())? {
            Ok(t) => Some(t),
            Err(status) => return Ok(status),
        }
    };
    let live = match &args.url {
        Some(url) => {
            let v = verify::Args {
                policy: args.policy.clone(),
                url: url.clone(),
                host: args.host.clone(),
                http_url: args.http_url.clone(),
                env: args.env.clone(),
                insecure: args.insecure,
                max_requests: 12,
                rate: 2.0,
                timeout: 10,
                format: verify::Format::Json,
            };
            verify::check(&v)?
        }
        None => None,
    };
    let inputs = Inputs {
        args,
        policy_file: compiled.file.clone(),
        policy_src: compiled.source.clone(),
        doc: DeTable::parse(&compiled.source).ok(),
        bundle,
        warnings: compiled.output.diagnostics.iter().filter(|d| !d.is_error()).cloned().collect(),
        findings,
        tally,
        live,
        page: front_page(bundle)?,
    };
    let gates = vec![gate(1, "Core infrastructure", gate1(&inputs)), gate(2, "Production readiness", gate2(&inputs)), gate(3, "Deployment ready", gate3(&inputs))];
    report(args, &compiled.file, &bundle.app.environment, &gates)
}

fn gate(n: u8, title: &'static str, criteria: Vec<Criterion>) -> Gate {
    let status = if criteria.iter().any(|c| c.status == Verdict::Fail) {
        Verdict::Fail
    } else if criteria.iter().any(|c| c.status == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Pass
    };
    Gate { gate: n, title, status, criteria }
}

fn crit(id: &'static str, title: &'static str, status: Verdict, why: impl Into<String>, at: Vec<At>) -> Criterion {
    Criterion { id, title, status, why: why.into(), at }
}

fn finding_at(f: &Finding) -> At {
    At::file(&f.file, f.line)
}

/// Findings as a reason: the first few messages, with their ids.
fn findings_why(list: &[&Finding]) -> String {
    let mut shown: Vec<String> = list.iter().take(3).map(|f| format!("{} {}", f.id, f.message)).collect();
    if list.len() > 3 {
        shown.push(format!("and {} more (edgeguard doctor)", list.len().saturating_sub(3)));
    }
    shown.join("; ")
}

// ------------------------------------------------------------------------------------- gate 1

fn gate1(i: &Inputs<'_>) -> Vec<Criterion> {
    vec![health_check(i), health_live(i), memory(i), env_complete(i), fly_config(i)]
}

/// The first HTTP check's path in fly.toml, with its line.
fn fly_check(src: &str) -> Option<(String, usize)> {
    let doc = DeTable::parse(src).ok()?;
    let http = doc.get_ref().get("http_service")?.get_ref().as_table()?;
    let checks = http.get("checks")?;
    let first = match checks.get_ref() {
        DeValue::Array(a) => a.first()?.get_ref().as_table()?.get("path")?,
        DeValue::Table(t) => t.get("path")?,
        _ => return None,
    };
    Some((first.get_ref().as_str()?.to_owned(), crate::import::line_of(src, first.span().start)))
}

fn health_check(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "health-check";
    const TITLE: &str = "Health check endpoint configured";
    let Some(fly) = &i.args.fly else {
        return crit(ID, TITLE, Verdict::Unknown, "no --fly: Fly's health check was not read", vec![]);
    };
    let fly_file = fly.display().to_string();
    let blocking = i.doctor(&["D020", "D023", "D024", "D025", "D026", "D027", "D035"]);
    if !blocking.is_empty() {
        return crit(ID, TITLE, Verdict::Fail, findings_why(&blocking), blocking.iter().map(|f| finding_at(f)).collect());
    }
    let Some(health) = &i.bundle.health else {
        return crit(ID, TITLE, Verdict::Fail, "the policy has no [health]: the edge cannot tell a dead origin from a live one, so failover and the health endpoint are off", vec![At::file(&i.policy_file, None)]);
    };
    let check = std::fs::read_to_string(fly).ok().and_then(|src| fly_check(&src));
    let (path, line) = check.map_or((String::from("?"), None), |(p, l)| (p, Some(l)));
    let mut at = vec![At::file(&fly_file, line)];
    at.extend(i.policy_at(&["health", "probe_path"]));
    let same = if path == health.probe_path { "the same path" } else { health.probe_path.as_str() };
    crit(ID, TITLE, Verdict::Pass, format!("Fly checks GET {path}; the edge lets it through (no block, limit or access rule) and probes {same} itself (at most once per {} s)", health.cache_ms / 1000), at)
}

fn health_live(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "health-live";
    const TITLE: &str = "Health check passing";
    let Some(live) = &i.live else {
        return crit(ID, TITLE, Verdict::Unknown, "no --url: the live edge's health endpoint was not requested", vec![]);
    };
    match live.checks.iter().find(|c| c.kind == "health") {
        Some(c) if c.passed() => crit(ID, TITLE, Verdict::Pass, "the edge answers 200 application/health+json, status \"pass\": its probes of the origins pass", vec![At { what: c.request.clone(), line: None }]),
        Some(c) => crit(ID, TITLE, Verdict::Fail, verify::mismatch_text(c), vec![At { what: c.request.clone(), line: None }]),
        None => crit(ID, TITLE, Verdict::Unknown, "the policy has no [health] path to request", vec![]),
    }
}

/// `"1gb"`, `"512mb"`, `1024` (MB) → MB.
fn memory_mb(v: &DeValue<'_>) -> Option<u64> {
    match v {
        DeValue::Integer(n) => n.as_str().replace('_', "").parse().ok(),
        DeValue::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            let n: u64 = digits.parse().ok()?;
            match s.get(digits.len()..)?.trim() {
                "gb" | "g" => n.checked_mul(1024),
                "mb" | "m" | "" => Some(n),
                _ => None,
            }
        }
        _ => None,
    }
}

fn memory(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "memory";
    const TITLE: &str = "Memory allocation (512 MB minimum)";
    let Some(fly) = &i.args.fly else {
        return crit(ID, TITLE, Verdict::Unknown, "no --fly: the Machines' size was not read", vec![]);
    };
    let file = fly.display().to_string();
    let src = std::fs::read_to_string(fly).unwrap_or_default();
    let found = DeTable::parse(&src).ok().and_then(|doc| {
        let vm = doc.get_ref().get("vm")?;
        let t = match vm.get_ref() {
            DeValue::Array(a) => a.first()?.get_ref().as_table()?.clone(),
            DeValue::Table(t) => t.clone(),
            _ => return None,
        };
        let v = t.get("memory").or_else(|| t.get("memory_mb"))?;
        Some((memory_mb(v.get_ref()), crate::import::line_of(&src, v.span().start)))
    });
    match found {
        Some((Some(mb), line)) if mb >= 512 => crit(ID, TITLE, Verdict::Pass, format!("[[vm]] gives each Machine {mb} MB"), vec![At::file(&file, Some(line))]),
        Some((Some(mb), line)) => crit(ID, TITLE, Verdict::Fail, format!("[[vm]] gives each Machine {mb} MB; the roadmap asks for at least 512 MB (Next.js runs out of memory below that)"), vec![At::file(&file, Some(line))]),
        Some((None, line)) => crit(ID, TITLE, Verdict::Unknown, "[[vm]] memory is not a size edgeguard reads (\"1gb\", \"512mb\", or MB as a number)", vec![At::file(&file, Some(line))]),
        None => crit(ID, TITLE, Verdict::Unknown, "fly.toml has no [[vm]] memory: the size is set outside this file (fly scale memory)", vec![At::file(&file, None)]),
    }
}

const ENV_ERRORS: [&str; 8] = ["D050", "D052", "D053", "D054", "D055", "D057", "D059", "D061"];

fn env_complete(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "env";
    const TITLE: &str = "All environment variables configured";
    let Some(catalog) = &i.args.inputs.catalog else {
        return crit(ID, TITLE, Verdict::Unknown, "no --catalog: the app's variables were not checked", vec![]);
    };
    let catalog_at = At::file(&catalog.display().to_string(), None);
    let given = i.args.inputs.dotenv.len() + i.args.inputs.fly_secrets.len() + i.args.inputs.fly_env.len() + i.args.inputs.wrangler_secrets.len() + usize::from(i.args.fly.is_some()) + usize::from(i.args.wrangler.is_some());
    if given == 0 {
        return crit(ID, TITLE, Verdict::Unknown, "a catalog but no inputs (--dotenv, --fly-secrets, --fly, …): nothing to check it against", vec![catalog_at]);
    }
    let errors = i.doctor(&ENV_ERRORS);
    if errors.is_empty() {
        let unlisted = i.doctor(&["D051", "D060"]).len();
        let note = if unlisted > 0 { format!("; {unlisted} warning(s) (names the catalog does not list, or set twice)") } else { String::new() };
        let default_env = &i.bundle.app.environment;
        let named = i.args.inputs.dotenv.iter().chain(&i.args.inputs.fly_secrets).chain(&i.args.inputs.fly_env).chain(&i.args.inputs.wrangler_secrets).map(|a| crate::envcheck::split_env_arg(a, default_env));
        let mut envs: BTreeSet<String> = BTreeSet::new();
        let mut at = vec![catalog_at];
        for (env, file) in named {
            envs.insert(env);
            at.push(At::file(&file, None));
        }
        for file in i.args.fly.iter().chain(&i.args.wrangler) {
            envs.insert(default_env.clone());
            at.push(At::file(&file.display().to_string(), None));
        }
        let envs = envs.into_iter().collect::<Vec<_>>().join(" and ");
        return crit(ID, TITLE, Verdict::Pass, format!("every variable the catalog requires in {envs} is set where it lives, in the right format ({given} inputs){note}"), at);
    }
    crit(ID, TITLE, Verdict::Fail, findings_why(&errors), errors.iter().map(|f| finding_at(f)).collect())
}

fn fly_config(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "fly-config";
    const TITLE: &str = "Fly.io configuration validated";
    let Some(fly) = &i.args.fly else {
        return crit(ID, TITLE, Verdict::Unknown, "no --fly", vec![]);
    };
    let file = fly.display().to_string();
    let fly_ids = ["D020", "D021", "D023", "D024", "D025", "D026", "D027", "D029", "D031", "D032", "D033", "D035", "D036"];
    let problems: Vec<&Finding> = i.findings.iter().filter(|f| f.file == file && fly_ids.contains(&f.id) && f.severity != Severity::Info).collect();
    let errors: Vec<&Finding> = problems.iter().copied().filter(|f| f.severity == Severity::Error).collect();
    if !errors.is_empty() {
        return crit(ID, TITLE, Verdict::Fail, findings_why(&errors), errors.iter().map(|f| finding_at(f)).collect());
    }
    let note = if problems.is_empty() { String::new() } else { format!(" ({} warning(s): {})", problems.len(), findings_why(&problems)) };
    crit(ID, TITLE, Verdict::Pass, format!("edgeguard doctor finds no error in it{note}"), vec![At::file(&file, None)])
}

// ------------------------------------------------------------------------------------- gate 2

fn gate2(i: &Inputs<'_>) -> Vec<Criterion> {
    vec![https(i), headers(i), rate_limits(i), api_keys(i), slo(i), tests(i)]
}

/// The edge's answer to a GET of the canonical host's front page over https.
fn front_page(bundle: &Bundle) -> Result<Option<edgeguard_core::explain::Explanation>, Failure> {
    let host = bundle.app.canonical_host.clone().or_else(|| bundle.app.hosts.first().cloned()).unwrap_or_else(|| "example.com".to_owned());
    let engine = edgeguard_core::Engine::new(bundle.clone()).map_err(|e| Failure::failed(format!("cannot load the compiled policy: {e}")))?;
    let Ok(request) = explain::Request::new(&format!("GET https://{host}/"), Vec::new()) else { return Ok(None) };
    let mut limiter = engine.new_limiter(0);
    let draw = edgeguard_core::Draw { request_id: 1, lane: 0 };
    Ok(Some(explain::evaluate(&engine, request, None, 1, 0, &mut limiter, move || Ok(draw))?.explanation))
}

fn max_age(hsts: &str) -> Option<u64> {
    hsts.split(';').find_map(|p| p.trim().to_ascii_lowercase().strip_prefix("max-age=").and_then(|v| v.trim_matches('"').parse().ok()))
}

fn https(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "https";
    const TITLE: &str = "HTTPS enforced, HSTS";
    let mut at: Vec<At> = i.policy_at(&["https", "redirect"]).into_iter().chain(i.policy_at(&["https", "hsts"])).collect();
    if at.is_empty() {
        at.push(At::file(&i.policy_file, None));
    }
    if !i.bundle.https.redirect {
        return crit(ID, TITLE, Verdict::Fail, "[https] redirect is off: http requests are served, not redirected", at);
    }
    let hsts = i.page.as_ref().and_then(|p| p.response_headers.get("strict-transport-security").cloned());
    match hsts.as_deref().and_then(max_age) {
        Some(age) if age >= 31_536_000 => crit(ID, TITLE, Verdict::Pass, format!("http → https redirect; HSTS max-age={age} ({} days)", age / 86_400), at),
        Some(age) => crit(ID, TITLE, Verdict::Fail, format!("HSTS max-age={age} ({} days): less than the year browsers and the MDN Observatory expect", age / 86_400), at),
        None => crit(ID, TITLE, Verdict::Fail, "no Strict-Transport-Security header: a browser that once used http keeps trying it", at),
    }
}

fn headers(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "headers";
    const TITLE: &str = "Security headers and CSP";
    let at: Vec<At> = i.policy_at(&["headers"]).into_iter().chain(i.policy_at(&["csp"])).collect();
    let Some(page) = &i.page else {
        return crit(ID, TITLE, Verdict::Unknown, "the front page could not be explained", at);
    };
    let h = &page.response_headers;
    let csp = h.get("content-security-policy");
    let mut missing = Vec::new();
    if csp.is_none() {
        missing.push("Content-Security-Policy (enforced)");
    }
    if !h.contains_key("x-frame-options") && !csp.is_some_and(|c| c.contains("frame-ancestors")) {
        missing.push("X-Frame-Options or frame-ancestors");
    }
    if h.get("x-content-type-options").map(String::as_str) != Some("nosniff") {
        missing.push("X-Content-Type-Options: nosniff");
    }
    if !h.contains_key("referrer-policy") {
        missing.push("Referrer-Policy");
    }
    if !missing.is_empty() {
        return crit(ID, TITLE, Verdict::Fail, format!("GET / lacks {}", missing.join(", ")), at);
    }
    let csp_lints: Vec<&Diagnostic> = i.warnings.iter().filter(|d| d.code.starts_with("W01") || d.code.starts_with("W02")).collect();
    let note = match csp_lints.first() {
        Some(first) => {
            let (line, _) = line_col(&i.policy_src, first.span.start);
            format!("; the CSP has {} finding(s) from edgeguard check, first {} at line {line}: {}", csp_lints.len(), first.code, first.message)
        }
        None => String::new(),
    };
    crit(ID, TITLE, Verdict::Pass, format!("GET / gets an enforced CSP, frame protection, nosniff and a Referrer-Policy{note}"), at)
}

fn rate_limits(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "rate-limits";
    const TITLE: &str = "Rate limits on abuse-prone routes";
    let writes = method::POST | method::PUT | method::PATCH | method::DELETE;
    let limited = |limit: Option<u16>| limit.and_then(|l| i.bundle.limits.get(usize::from(l))).filter(|l| !l.shadow).map(|l| l.name.clone());
    let mut open = Vec::new();
    let mut names = BTreeSet::new();
    for route in i.bundle.routes.iter().filter(|r| r.block.is_none() && r.methods & writes != 0) {
        match limited(route.limit) {
            Some(name) => {
                names.insert(name);
            }
            None => open.push(route.pattern.clone().unwrap_or_else(|| "[defaults]".to_owned())),
        }
    }
    if !open.is_empty() {
        let at = open.iter().map(|p| i.route_at(p)).collect();
        return crit(ID, TITLE, Verdict::Fail, format!("{} route(s) take POST/PUT/PATCH/DELETE with no enforced limit: {}", open.len(), open.join(", ")), at);
    }
    let at = i.policy_at(&["limits"]).into_iter().collect();
    crit(ID, TITLE, Verdict::Pass, format!("every route that takes POST/PUT/PATCH/DELETE has an enforced limit ({})", names.into_iter().collect::<Vec<_>>().join(", ")), at)
}

fn api_keys(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "api-keys";
    const TITLE: &str = "API keys";
    if i.bundle.api_keys.is_empty() {
        return crit(ID, TITLE, Verdict::Unknown, "the policy has no [api_keys]: no route is machine-to-machine, or its keys are checked by the app", vec![]);
    }
    let known: Vec<&Diagnostic> = i.warnings.iter().filter(|d| d.code == edgeguard_compiler::codes::KNOWN_KEY_HASH).collect();
    if let Some(first) = known.first() {
        let at = known.iter().map(|d| At::file(&i.policy_file, Some(line_col(&i.policy_src, d.span.start).0))).collect();
        return crit(ID, TITLE, Verdict::Fail, format!("{} (W062): {}", first.message, first.help.clone().unwrap_or_default()), at);
    }
    let routes = i.bundle.routes.iter().filter(|r| r.api_key.is_some()).count();
    crit(ID, TITLE, Verdict::Pass, format!("{} key(s), stored as SHA-256 hashes, guard {routes} route(s)", i.bundle.api_keys.len()), i.policy_at(&["api_keys"]).into_iter().collect())
}

/// Whether latency holds is a property of the running edge, never of a config: the verdict stays
/// unknown, and says whether the policy measures it ([slo.*] with a p95 ≤ 200 ms objective).
fn slo(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "slo";
    const TITLE: &str = "Performance targets (API p95 < 200 ms)";
    let target = i.bundle.slos.iter().find(|s| s.latency.is_some_and(|l| l.percentile_ppm >= 950_000 && l.threshold_ms <= 200));
    match target {
        Some(s) => crit(
            ID,
            TITLE,
            Verdict::Unknown,
            format!(
                "[slo.{}] sets p95 ≤ {} ms over {} route(s), measured fleet-wide{}; a config cannot show whether it holds: see the edge's dashboard ({})",
                s.name,
                s.latency.map_or(0, |l| l.threshold_ms),
                s.routes.len(),
                if s.alerts != 0 { " and paged on" } else { "" },
                i.bundle.stats.dashboard.as_deref().unwrap_or("?scope=fleet"),
            ),
            i.policy_at(&["slo", &s.name]).into_iter().collect(),
        ),
        None => crit(ID, TITLE, Verdict::Unknown, "no [slo.*] with a p95 ≤ 200 ms latency objective, and a config cannot show latency: add one (docs/operate.md) to measure it fleet-wide and be paged when it burns", vec![]),
    }
}

fn tests(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "tests";
    const TITLE: &str = "Routes tested (policy test cases)";
    let Some(t) = &i.tally else {
        return crit(ID, TITLE, Verdict::Unknown, "no --cases: the policy's test cases were not run", vec![]);
    };
    let files: Vec<At> = i.args.cases.iter().map(|c| At::file(&c.display().to_string(), None)).collect();
    let patterns: Vec<&str> = i.bundle.routes.iter().filter_map(|r| r.pattern.as_deref()).collect();
    let untested: Vec<&str> = patterns.iter().copied().filter(|p| !t.routes.contains(*p)).collect();
    let coverage = format!("the cases reach {} of the policy's {} routes", patterns.len().saturating_sub(untested.len()), patterns.len());
    let not = if untested.is_empty() { String::new() } else { format!(" (not reached: {})", untested.join(", ")) };
    if t.failed > 0 {
        return crit(ID, TITLE, Verdict::Fail, format!("{} passed, {} failed: {}", t.passed, t.failed, t.failures.join("; ")), files);
    }
    if !untested.is_empty() {
        return crit(ID, TITLE, Verdict::Fail, format!("{} cases pass, but {coverage}{not}: the roadmap asks for every route tested", t.passed), files);
    }
    crit(ID, TITLE, Verdict::Pass, format!("{} cases pass; {coverage}", t.passed), files)
}

// ------------------------------------------------------------------------------------- gate 3

fn gate3(i: &Inputs<'_>) -> Vec<Criterion> {
    vec![env_parity(i), blue_green(i), worker_config(i), rollback(i), live(i)]
}

fn env_parity(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "parity";
    const TITLE: &str = "Staging/production parity";
    let Some(catalog) = &i.args.inputs.catalog else {
        return crit(ID, TITLE, Verdict::Unknown, "no --catalog", vec![]);
    };
    let text = std::fs::read_to_string(catalog).unwrap_or_default();
    if !text.contains("mirrors") {
        return crit(ID, TITLE, Verdict::Unknown, "no environment of the catalog `mirrors` another", vec![At::file(&catalog.display().to_string(), None)]);
    }
    let envs: BTreeSet<String> = i.args.inputs.dotenv.iter().chain(&i.args.inputs.fly_secrets).chain(&i.args.inputs.fly_env).chain(&i.args.inputs.wrangler_secrets).map(|a| crate::envcheck::split_env_arg(a, &i.bundle.app.environment).0).chain(std::iter::once(i.bundle.app.environment.clone())).collect();
    if envs.len() < 2 {
        return crit(ID, TITLE, Verdict::Unknown, "inputs for one environment only: give the other's as ENV=FILE", vec![At::file(&catalog.display().to_string(), None)]);
    }
    let gaps = i.doctor(&["D056", "D057"]);
    if !gaps.is_empty() {
        return crit(ID, TITLE, Verdict::Fail, findings_why(&gaps), gaps.iter().map(|f| finding_at(f)).collect());
    }
    let declared = i.doctor(&["D058"]);
    let note = declared.first().map_or_else(String::new, |f| format!("; declared differences: {}", f.message.rsplit(": ").next().unwrap_or_default()));
    crit(ID, TITLE, Verdict::Pass, format!("{} have the same variables, each with its own secrets{note}", envs.into_iter().collect::<Vec<_>>().join(" and ")), vec![At::file(&catalog.display().to_string(), None)])
}

fn blue_green(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "blue-green";
    const TITLE: &str = "Blue-green levers configured";
    let b = i.bundle;
    let mut at: Vec<At> = i.policy_at(&["deploy"]).into_iter().collect();
    if b.origins.len() < 2 {
        return crit(ID, TITLE, Verdict::Fail, format!("the policy has {} origin(s): blue-green needs two, one serving and one to switch to", b.origins.len()), vec![i.policy_at(&["origins"]).unwrap_or_else(|| At::file(&i.policy_file, None))]);
    }
    let active = b.origins.get(usize::from(b.deploy.active)).map_or("?", |o| o.name.as_str());
    let canary = b.deploy.canary.as_ref().and_then(|c| b.origins.get(usize::from(c.origin)).map(|o| format!("{} at {}%", o.name, f64::from(c.basis_points) / 100.0)));
    let mut why = format!("{} origins ({}); {active} serves", b.origins.len(), b.origins.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", "));
    if let Some(c) = canary {
        let _ = write!(why, ", canary {c}");
    }
    if b.deploy.failover_methods != 0 {
        why.push_str(", failover on");
    }
    let Some(wrangler) = &i.args.wrangler else {
        why.push_str("; no --wrangler: the EDGE_ACTIVE_ORIGIN / EDGE_CANARY_PERCENT levers were not read");
        return crit(ID, TITLE, Verdict::Unknown, why, at);
    };
    let broken = i.doctor(&["D008", "D009", "D015", "D016"]);
    if !broken.is_empty() {
        at.extend(broken.iter().map(|f| finding_at(f)));
        return crit(ID, TITLE, Verdict::Fail, findings_why(&broken), at);
    }
    let src = std::fs::read_to_string(wrangler).unwrap_or_default();
    let levers: Vec<&str> = ["EDGE_ACTIVE_ORIGIN", "EDGE_CANARY_PERCENT"].into_iter().filter(|l| src.lines().any(|line| line.trim_start().starts_with(l))).collect();
    let file = wrangler.display().to_string();
    if levers.len() < 2 {
        return crit(ID, TITLE, Verdict::Fail, format!("{why}; wrangler.toml [vars] lacks EDGE_ACTIVE_ORIGIN and EDGE_CANARY_PERCENT, the levers a rollback flips without a rebuild (`wrangler deploy --var EDGE_ACTIVE_ORIGIN:green`)"), vec![At::file(&file, None)]);
    }
    let line = src.lines().position(|l| l.trim_start().starts_with("EDGE_ACTIVE_ORIGIN")).map(|p| p.saturating_add(1));
    at.push(At::file(&file, line));
    crit(ID, TITLE, Verdict::Pass, format!("{why}; wrangler.toml has both levers"), at)
}

fn worker_config(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "worker-config";
    const TITLE: &str = "Edge worker configuration validated";
    let Some(wrangler) = &i.args.wrangler else {
        return crit(ID, TITLE, Verdict::Unknown, "no --wrangler", vec![]);
    };
    let file = wrangler.display().to_string();
    let errors: Vec<&Finding> = i.findings.iter().filter(|f| f.severity == Severity::Error && (f.file == file || f.id == "D044" || f.id == "D045") && f.id < "D050").collect();
    if !errors.is_empty() {
        return crit(ID, TITLE, Verdict::Fail, findings_why(&errors), errors.iter().map(|f| finding_at(f)).collect());
    }
    let built = if i.doctor(&["D013"]).is_empty() { "" } else { " (its `main` is not built yet: edgeguard build before wrangler deploy)" };
    crit(ID, TITLE, Verdict::Pass, format!("edgeguard doctor finds no error in it{built}"), vec![At::file(&file, None)])
}

fn rollback(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "rollback";
    const TITLE: &str = "Rollback documented";
    let Some(runbook) = &i.args.runbook else {
        return crit(ID, TITLE, Verdict::Unknown, "no --runbook: where the rollback is written down was not given", vec![]);
    };
    let file = runbook.display().to_string();
    let src = std::fs::read_to_string(runbook).unwrap_or_default();
    let levers = ["EDGE_ACTIVE_ORIGIN", "EDGE_CANARY_PERCENT", "percent = 0", "wrangler rollback", "fly deploy --image", "fly releases"];
    let says = |l: &str| l.to_ascii_lowercase().contains("rollback") || l.to_ascii_lowercase().contains("roll back");
    // The most specific heading about it (`## Rollback` over the document's title), else the
    // first line that mentions it; the lever is looked for from there on.
    let heading = src.lines().enumerate().filter(|(_, l)| l.starts_with('#') && says(l)).max_by_key(|(n, l)| (l.chars().take_while(|c| *c == '#').count(), usize::MAX.saturating_sub(*n))).map(|(n, _)| n);
    let mention = heading.or_else(|| src.lines().position(says));
    let lever = src.lines().enumerate().skip(mention.unwrap_or(0)).find_map(|(n, l)| levers.iter().find(|k| l.contains(*k)).map(|k| (n.saturating_add(1), *k)));
    match (mention, lever) {
        (Some(m), Some((n, k))) => crit(ID, TITLE, Verdict::Pass, format!("the runbook covers a rollback and names the lever ({k})"), vec![At::file(&file, Some(m.saturating_add(1))), At::file(&file, Some(n))]),
        (None, _) => crit(ID, TITLE, Verdict::Fail, "the runbook never mentions a rollback", vec![At::file(&file, None)]),
        (Some(m), None) => crit(ID, TITLE, Verdict::Fail, format!("the runbook mentions a rollback but none of the levers that do one ({})", levers.join(", ")), vec![At::file(&file, Some(m.saturating_add(1)))]),
    }
}

fn live(i: &Inputs<'_>) -> Criterion {
    const ID: &str = "live";
    const TITLE: &str = "End-to-end: the live edge matches the policy";
    let Some(live) = &i.live else {
        return crit(ID, TITLE, Verdict::Unknown, "no --url: the deployed edge was not checked (edgeguard verify)", vec![]);
    };
    let failed: Vec<&verify::Checked> = live.checks.iter().filter(|c| !c.passed()).collect();
    if failed.is_empty() {
        return crit(ID, TITLE, Verdict::Pass, format!("{} requests to {} (as {}): every answer is what explain says", live.requests, live.url, live.host), vec![At { what: live.url.clone(), line: None }]);
    }
    let why = failed.iter().take(4).map(|c| format!("{}: {}", c.kind, verify::mismatch_text(c))).collect::<Vec<_>>().join("; ");
    crit(ID, TITLE, Verdict::Fail, format!("{} of {} checks differ — {why}", failed.len(), live.requests), failed.iter().map(|c| At { what: c.request.clone(), line: None }).collect())
}

// ------------------------------------------------------------------------------------ reports

fn report(args: &Args, file: &str, env: &str, gates: &[Gate]) -> CmdResult {
    let all = || gates.iter().flat_map(|g| &g.criteria);
    let count = |v: Verdict| all().filter(|c| c.status == v).count();
    let (pass, fail, unknown) = (count(Verdict::Pass), count(Verdict::Fail), count(Verdict::Unknown));
    let verdict = if fail > 0 { "no-go" } else if unknown > 0 { "incomplete" } else { "go" };
    let failed = fail > 0 || (args.deny_unknown && unknown > 0);
    let summary = format!("ready: {} — {pass} pass, {fail} fail, {unknown} unknown ({})\n", verdict.to_ascii_uppercase(), gates.iter().map(|g| format!("gate {} {}", g.gate, g.status.word())).collect::<Vec<_>>().join(", "));
    match args.format {
        Format::Text => output::print(&format!("{}{summary}", text(file, env, gates)))?,
        Format::Json => {
            let r = Report { verdict, ok: !failed, policy: file, environment: env, pass, fail, unknown, gates };
            output::print(&format!("{}\n", serde_json::to_string_pretty(&r).map_err(|e| Failure::failed(format!("cannot serialize the report: {e}")))?))?;
        }
        Format::Markdown => output::print(&markdown(file, env, gates, verdict, &summary))?,
        Format::Github => {
            output::print(&github(gates))?;
            output::eprint(&summary);
        }
    }
    Ok(if failed { Status::Failed } else { Status::Success })
}

fn text(file: &str, env: &str, gates: &[Gate]) -> String {
    let mut out = format!("edgeguard ready — {file} ({env})\n");
    for g in gates {
        let _ = writeln!(out, "\nGate {} — {}: {}", g.gate, g.title, g.status.word());
        for c in &g.criteria {
            let _ = writeln!(out, "  {:<8} {:<14} {}", c.status.word(), c.id, c.title);
            let _ = writeln!(out, "           {}", c.why);
            if !c.at.is_empty() {
                let _ = writeln!(out, "           at {}", c.at.iter().map(At::text).collect::<Vec<_>>().join(", "));
            }
        }
    }
    out.push('\n');
    out
}

fn markdown(file: &str, env: &str, gates: &[Gate], verdict: &str, summary: &str) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let head = match verdict {
        "go" => "✅ GO",
        "no-go" => "❌ NO-GO",
        _ => "❔ INCOMPLETE",
    };
    let mut out = format!("<!-- edgeguard-ready -->\n## edgeguard ready: {head}\n\n`{file}` ({env})\n");
    for g in gates {
        let _ = write!(out, "\n### {} Gate {} — {}\n\n| | criterion | why | where |\n|---|---|---|---|\n", g.status.mark(), g.gate, g.title);
        for c in &g.criteria {
            let at = c.at.iter().map(|a| format!("`{}`", a.text())).collect::<Vec<_>>().join(" ");
            let _ = writeln!(out, "| {} | **{}** `{}` | {} | {} |", c.status.mark(), c.title, c.id, cell(&c.why), cell(&at));
        }
    }
    let _ = write!(out, "\n{}", summary.trim_start_matches("ready: "));
    out
}

fn github(gates: &[Gate]) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for c in gates.iter().flat_map(|g| &g.criteria) {
        let command = match c.status {
            Verdict::Pass => continue,
            Verdict::Fail => "error",
            Verdict::Unknown => "warning",
        };
        let place = c.at.iter().find(|a| !a.is_request()).map(|a| format!("file={}{},", prop(&a.what), a.line.map(|l| format!(",line={l}")).unwrap_or_default())).unwrap_or_default();
        let _ = writeln!(out, "::{command} {place}title=ready {}::{}", c.id, data(&format!("{}: {}", c.title, c.why)));
    }
    out
}
