//! `edgeguard test`: policy test cases (TOML) run through the engine.
//!
//! A case file lists requests and what the edge must answer (docs/testing.md). Each case is
//! evaluated by [`explain::evaluate`], the function `edgeguard explain` itself calls, on an engine
//! compiled once per environment: `test` and `explain` cannot disagree. Each case gets a fresh
//! limiter; its `before` requests (sent first, in order, their decisions unchecked) and its
//! `repeat` requests share it.
//!
//! Unlike `explain`, `test` does not draw randomness: the request id, the limiter's hash seed and
//! the canary draw are fixed (the draw by the case's `lane`), so a case gives the same answer on
//! every run.
//!
//! Exit codes: 0 every case passed, 1 a case failed (or the policy has errors), 2 usage errors,
//! unreadable files and malformed case files (every problem reported with file:line:col).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgeguard_core::explain::Explanation;
use edgeguard_core::{Draw, Engine};
use toml::de::DeValue;

use crate::explain::{self, Request};
use crate::render::{self, Stream};
use crate::{CmdResult, Failure, Status, output};

mod cases;
mod compare;
mod parse;
mod report;
#[cfg(test)]
mod tests;

use cases::{Case, CaseFile, LIMITER_SEED, REQUEST_ID, Step};
use compare::compare;
use parse::parse;
use report::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A diff per failing case (expected vs actual, per field), then `N passed, M failed`.
    Text,
    /// JUnit XML for CI test reports (one testsuite per case file); the summary goes to stderr.
    Junit,
    /// The text report plus a GitHub Actions `::error` annotation on each failing case's line.
    Github,
    /// SARIF 2.1.0, one `test-failed` result per failing case; the summary goes to stderr.
    Sarif,
}

/// Run policy test cases: requests and the answers the edge must give.
#[derive(Debug, clap::Args)]
#[command(after_help = "Every case runs through the engine `edgeguard explain` uses, compiled once per \
    environment, with a fresh rate limiter per case (shared by the case's `before` requests, sent \
    first). The last line of the text report is `N passed, M failed` (on stderr with --format \
    junit or sarif).\n\n\
    Exit codes: 0 every case passed, 1 a case failed or the policy has errors, 2 usage error \
    (an unreadable file, a malformed case file: each problem is shown with file:line:col).\n\n\
    The case file format is documented in docs/testing.md.\n\n\
    Examples:\n  \
    edgeguard test policy.toml policy.cases.toml\n  \
    edgeguard test policy.toml tests/*.cases.toml --filter admin --verbose\n  \
    edgeguard test policy.toml policy.cases.toml --format junit > junit.xml\n  \
    edgeguard test policy.toml policy.cases.toml --format github   # annotations in a GitHub Actions step")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// One or more case files (TOML).
    #[arg(required = true, value_name = "CASES")]
    pub cases: Vec<PathBuf>,
    /// Compile for this environment when a case (or the file's [defaults]) names none.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Run only the cases whose name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also list the cases that pass (text and github formats).
    #[arg(short, long)]
    pub verbose: bool,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mismatch {
    field: String,
    expected: String,
    actual: String,
}

/// A case's result.
struct Outcome {
    file: usize,
    case: usize,
    mismatches: Vec<Mismatch>,
    /// The decision of a failed case; `None` for a pass, or when the policy did not compile for
    /// the case's environment.
    explanation: Option<Explanation>,
    time: Duration,
    /// The route pattern the case's request matched (`None`: `[defaults]`, or not routed).
    route: Option<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// The case files parsed and every case run: what `run` reports and `ready` tallies.
struct Ran {
    files: Vec<CaseFile>,
    outcomes: Vec<Outcome>,
    elapsed: Duration,
}

/// Parse the case files and run every case; `Err(status)` when a case file is malformed (its
/// diagnostics printed on stderr) or `--filter` selects nothing.
fn execute(args: &Args) -> Result<Result<Ran, Status>, Failure> {
    let mut files = Vec::with_capacity(args.cases.len());
    let mut malformed = 0usize;
    for path in &args.cases {
        let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))?;
        let file = path.display().to_string();
        let Ok(source) = String::from_utf8(bytes) else {
            return Err(Failure::usage(format!("`{file}` is not UTF-8 text, so it is not a case file")));
        };
        match parse(&source) {
            Ok(cases) => files.push(CaseFile { file, source, cases }),
            Err(diags) => {
                malformed = malformed.saturating_add(1);
                render::text(Stream::Stderr, &file, &source, &diags)?;
                if args.format == Format::Github {
                    output::print(&render::github(&file, &source, &diags))?;
                }
                let n = diags.len();
                output::eprint(&format!("{file}: {n} error{} in the case file\n", if n == 1 { "" } else { "s" }));
            }
        }
    }
    if malformed > 0 {
        return Ok(Err(Status::Usage));
    }
    if let Some(filter) = &args.filter {
        let total: usize = files.iter().map(|f| f.cases.len()).sum();
        for f in &mut files {
            f.cases.retain(|c| c.name.contains(filter.as_str()));
        }
        if files.iter().all(|f| f.cases.is_empty()) {
            return Err(Failure::usage(format!("--filter {filter:?} matches none of the {total} cases")));
        }
    }

    // One engine per environment, compiled in the order cases first name them.
    let mut engines: HashMap<Option<String>, Option<Engine>> = HashMap::new();
    let env_of = |case: &Case| case.env.clone().or_else(|| args.env.clone());
    for case in files.iter().flat_map(|f| &f.cases) {
        if let Entry::Vacant(slot) = engines.entry(env_of(case)) {
            let engine = explain::load_engine(&args.policy, slot.key().as_deref())?;
            slot.insert(engine);
        }
    }

    let started = Instant::now();
    let mut outcomes = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        for (ci, case) in f.cases.iter().enumerate() {
            let env = env_of(case);
            let t0 = Instant::now();
            let mut route = None;
            let (explanation, mismatches) = match engines.get(&env).and_then(Option::as_ref) {
                Some(engine) => {
                    let draw = |step: &Step| {
                        let draw = Draw { request_id: REQUEST_ID, lane: step.lane.draw() };
                        move || Ok(draw)
                    };
                    // One fresh limiter per case: the `before` requests spend from it first.
                    let mut limiter = engine.new_limiter(LIMITER_SEED);
                    for b in &case.before {
                        explain::decide(engine, with_session(engine, b)?, b.client_ip, b.repeat, b.now, &mut limiter, draw(b))?;
                    }
                    let s = &case.step;
                    let evaluated = explain::evaluate(engine, with_session(engine, s)?, s.client_ip, s.repeat, s.now, &mut limiter, draw(s))?;
                    let mismatches = compare(&case.expect, &evaluated.explanation);
                    route = evaluated.explanation.route.clone();
                    // Kept for the report of a failure only: 10 000 passing explanations are
                    // tens of megabytes of header values nobody reads.
                    let explanation = (!mismatches.is_empty()).then_some(evaluated.explanation);
                    (explanation, mismatches)
                }
                None => {
                    let which = env.as_deref().map_or_else(String::new, |e| format!(" for env `{e}`"));
                    let m = Mismatch {
                        field: "policy".to_owned(),
                        expected: format!("compiles{which}"),
                        actual: "errors (shown above)".to_owned(),
                    };
                    (None, vec![m])
                }
            };
            outcomes.push(Outcome { file: fi, case: ci, mismatches, explanation, time: t0.elapsed(), route });
        }
    }
    Ok(Ok(Ran { elapsed: started.elapsed(), files, outcomes }))
}

/// The step's request, with its test session signed and added.
fn with_session(engine: &Engine, step: &Step) -> Result<Request, Failure> {
    let mut request = step.request.clone();
    if let Some(spec) = &step.session {
        let session = explain::TestSession { source: spec.source.as_deref(), claims: &spec.claims, expires_in: spec.expires_in, forged: spec.forged, cookie_chunks: spec.cookie_chunks };
        explain::add_session(engine, &mut request, step.at, &session)?;
    }
    Ok(request)
}

/// A TOML value as JSON (a case's session claims).
fn json_of(value: &DeValue<'_>) -> serde_json::Value {
    match value {
        DeValue::String(s) => serde_json::Value::from(s.as_ref()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map_or(serde_json::Value::Null, serde_json::Value::from),
        DeValue::Float(f) => f.as_str().parse::<f64>().map_or(serde_json::Value::Null, serde_json::Value::from),
        DeValue::Boolean(b) => serde_json::Value::from(*b),
        DeValue::Datetime(d) => serde_json::Value::from(d.to_string()),
        DeValue::Array(items) => serde_json::Value::Array(items.iter().map(|v| json_of(v.get_ref())).collect()),
        DeValue::Table(t) => serde_json::Value::Object(t.iter().map(|(k, v)| (k.get_ref().to_string(), json_of(v.get_ref()))).collect()),
    }
}

pub fn run(args: &Args) -> CmdResult {
    let Ran { files, outcomes, elapsed } = match execute(args)? {
        Ok(ran) => ran,
        Err(status) => return Ok(status),
    };
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let passed = outcomes.len().saturating_sub(failed);
    let summary = format!("{passed} passed, {failed} failed\n");

    let report = Report { args, files: &files, outcomes: &outcomes };
    match args.format {
        Format::Text => {
            output::print(&report.text())?;
            output::print(&summary)?;
        }
        Format::Github => {
            output::print(&report.text())?;
            output::print(&report.github())?;
            output::print(&summary)?;
        }
        Format::Junit => {
            output::print(&report.junit(elapsed))?;
            output::eprint(&summary);
        }
        Format::Sarif => {
            output::print(&format!("{}\n", report.sarif()))?;
            output::eprint(&summary);
        }
    }
    Ok(if failed > 0 { Status::Failed } else { Status::Success })
}

/// What `ready` reports of a policy's test cases.
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    /// `file:line name` of each failing case.
    pub failures: Vec<String>,
    /// The route patterns the cases' requests matched.
    pub routes: std::collections::BTreeSet<String>,
}

/// Run the case files against the policy for `ready`; `Err(status)` as for [`execute`].
pub fn tally(policy: &std::path::Path, cases: &[PathBuf], env: Option<&str>) -> Result<Result<Tally, Status>, Failure> {
    let args = Args { policy: policy.to_path_buf(), cases: cases.to_vec(), env: env.map(str::to_owned), filter: None, format: Format::Text, verbose: false };
    let ran = match execute(&args)? {
        Ok(ran) => ran,
        Err(status) => return Ok(Err(status)),
    };
    let mut t = Tally { passed: 0, failed: 0, failures: Vec::new(), routes: std::collections::BTreeSet::new() };
    for o in &ran.outcomes {
        t.routes.extend(o.route.clone());
        if o.passed() {
            t.passed = t.passed.saturating_add(1);
        } else {
            t.failed = t.failed.saturating_add(1);
            if let Some(case) = ran.files.get(o.file).and_then(|f| f.cases.get(o.case).map(|c| (f, c))) {
                t.failures.push(format!("{}:{} {}", case.0.file, case.1.at_line, case.1.name));
            }
        }
    }
    Ok(Ok(t))
}

