//! `edgeguard diff OLD NEW`: what changed between two policies (or bundles) and whether each
//! change weakens, strengthens or does not affect the edge's protection.
//!
//! The comparison itself is `edgeguard_compiler::diff` (shared with the playground); this module
//! reads and compiles the inputs and renders the result as text, JSON, Markdown, GitHub
//! workflow commands or SARIF.

use std::path::{Path, PathBuf};

use edgeguard_compiler::Options;
use edgeguard_compiler::diagnostics::Diagnostic;
use edgeguard_compiler::diff::{self as semantic, Change, Summary, Verdict};
use edgeguard_core::Bundle;
use serde::Serialize;

use crate::render::{self, Counts, Stream};
use crate::sarif::{self, Finding, Level};
use crate::{CmdResult, Failure, Status, output, policy};

/// The first bytes of every bundle `edgeguard compile` writes (magic, then the format version).
const BUNDLE_MAGIC: &[u8; 4] = b"EGB\x01";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per change, grouped by area, then the counts.
    Text,
    /// { "summary": {weakened, strengthened, neutral}, "changes": [{area, subject, change, verdict, old, new}] }.
    Json,
    /// A counts line and a table, for a pull-request comment.
    Markdown,
    /// One GitHub Actions annotation per weakened change, on the NEW policy's file.
    Github,
    /// SARIF 2.1.0: every change, rule ids diff-weakened / diff-strengthened / diff-neutral.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Exit 1 when any change weakens the policy.
    Weakened,
    /// Exit 1 when anything changed at all.
    Any,
}

/// Compare two policies (or compiled bundles) and give each change a security verdict.
#[derive(Debug, clap::Args)]
#[command(after_help = "OLD and NEW are policy files (TOML) or bundles written by `edgeguard compile`, \
    told apart by the bundle's magic bytes. Policies are compiled first, both for --env when given; \
    a policy with errors is reported on stderr and the command exits 1.\n\n\
    Verdicts: weakened (the edge refuses less or sends a laxer security header), strengthened (the \
    reverse), neutral (no effect on either). The rules are in docs/diff.md.\n\n\
    Exit codes: 0 compared (even with changes, unless --fail-on applies), 1 --fail-on matched or a \
    policy has errors, 2 usage error or an unreadable file.\n\n\
    Examples:\n  \
    edgeguard diff main.toml policy.toml\n  \
    edgeguard diff main.toml policy.toml --fail-on weakened --format github\n  \
    edgeguard diff deployed.bundle policy.toml --env staging --format markdown > comment.md")]
pub struct Args {
    /// The policy (or bundle) before the change.
    pub old: PathBuf,
    /// The policy (or bundle) after the change.
    pub new: PathBuf,
    /// Compile both policies for this environment (overrides `app.environment`, picks `[env.NAME]`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Exit 1 when a change of this class is found.
    #[arg(long, value_enum, value_name = "CLASS")]
    pub fail_on: Option<FailOn>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// One side of the comparison, ready to diff.
struct Side {
    file: String,
    /// The policy text, to locate changes in; `None` for a bundle.
    source: Option<String>,
    bundle: Bundle,
}

/// A policy that did not compile: its errors are shown and the command exits 1.
struct Broken {
    file: String,
    source: String,
    diagnostics: Vec<Diagnostic>,
}

pub fn run(args: &Args) -> CmdResult {
    // Read both first, so an unreadable file is a usage error before any compilation.
    let old_bytes = policy::read(&args.old)?;
    let new_bytes = policy::read(&args.new)?;
    let env = args.env.as_deref();
    // Two policies compile in parallel: the compiler is single-threaded and each side is
    // independent. Where there are no threads (WASI: the npm package's CLI), one after the other.
    let (old, new) = std::thread::scope(|scope| {
        let old = std::thread::Builder::new().spawn_scoped(scope, || prepare(&args.old, &old_bytes, env));
        let new = prepare(&args.new, &new_bytes, env);
        let old = match old {
            Ok(handle) => handle.join(),
            Err(_) => Ok(prepare(&args.old, &old_bytes, env)),
        };
        (old, new)
    });
    let old = old.map_err(|_| Failure::failed("compiling OLD failed unexpectedly (a bug in edgeguard)"))??;
    let new = new?;
    let (old, new) = match (old, new) {
        (Ok(old), Ok(new)) => (old, new),
        (old, new) => {
            for broken in [old.err(), new.err()].into_iter().flatten() {
                let errors: Vec<Diagnostic> = broken.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
                render::text(Stream::Stderr, &broken.file, &broken.source, &errors)?;
                output::eprint(&render::summary(&broken.file, Counts::of(&broken.diagnostics), false));
            }
            return Ok(Status::Failed);
        }
    };
    if let Some(env) = env {
        for side in [&old, &new] {
            if side.source.is_none() && side.bundle.app.environment != env {
                output::eprint(&format!(
                    "note: `{}` is a bundle compiled for `{}`; --env {env} applies to policies only\n",
                    side.file, side.bundle.app.environment
                ));
            }
        }
    }

    let changes = semantic::diff(&old.bundle, &new.bundle);
    let summary = Summary::of(&changes);
    let fails = match args.fail_on {
        None => false,
        Some(FailOn::Weakened) => summary.weakened > 0,
        Some(FailOn::Any) => summary.total() > 0,
    };
    match args.format {
        Format::Text => output::print(&text(&changes, summary))?,
        Format::Json => output::print(&json(&changes, summary)?)?,
        Format::Markdown => output::print(&markdown(&changes, summary))?,
        Format::Github => {
            output::print(&github(&changes, &new, args.fail_on.is_some()))?;
            output::eprint(&format!("{} → {}: {summary}\n", old.file, new.file));
        }
        Format::Sarif => output::print(&format!("{}\n", sarif::render(&findings(&changes, &new, args.fail_on.is_some()))))?,
    }
    Ok(if fails { Status::Failed } else { Status::Success })
}

/// A bundle (by its magic bytes) is loaded as is; anything else is compiled as a policy.
fn prepare(path: &Path, bytes: &[u8], env: Option<&str>) -> Result<Result<Side, Broken>, Failure> {
    let file = path.display().to_string();
    if bytes.starts_with(BUNDLE_MAGIC) {
        let bundle = Bundle::from_bytes(bytes).map_err(|e| Failure::usage(format!("cannot load the bundle `{file}`: {e}")))?;
        return Ok(Ok(Side { file, source: None, bundle }));
    }
    let base_dir = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).map(Path::to_path_buf);
    let options = Options { env: env.map(str::to_owned), base_dir };
    let compiled = edgeguard_compiler::compile_bytes(bytes, &options);
    let source = String::from_utf8_lossy(bytes).into_owned();
    let has_errors = compiled.has_errors();
    match compiled.bundle {
        Some(bundle) if !has_errors => Ok(Ok(Side { file, source: Some(source), bundle })),
        _ => Ok(Err(Broken { file, source, diagnostics: compiled.diagnostics })),
    }
}

fn marker(v: Verdict) -> char {
    match v {
        Verdict::Weakened => '-',
        Verdict::Strengthened => '+',
        Verdict::Neutral => '~',
    }
}

/// `- weakened     route /api/admin/**: require_cookie "sb-*-auth-token*" removed`, one line per
/// change under a heading per area, then the counts; `no changes` when there are none.
fn text(changes: &[Change], summary: Summary) -> String {
    if changes.is_empty() {
        return "no changes\n".to_owned();
    }
    let mut out = String::new();
    let mut area = None;
    for c in changes {
        if area != Some(c.area) {
            if area.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("{}:\n", c.area));
            area = Some(c.area);
        }
        out.push_str(&format!("{} {:<12} {}: {}\n", marker(c.verdict), c.verdict, c.label(), c.change));
    }
    out.push_str(&format!("\n{summary}\n"));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    summary: JsonSummary,
    changes: Vec<JsonChange<'a>>,
}

#[derive(Serialize)]
struct JsonSummary {
    weakened: usize,
    strengthened: usize,
    neutral: usize,
}

#[derive(Serialize)]
struct JsonChange<'a> {
    area: &'a str,
    subject: &'a str,
    change: &'a str,
    verdict: &'a str,
    old: Option<&'a str>,
    new: Option<&'a str>,
}

fn json(changes: &[Change], summary: Summary) -> Result<String, Failure> {
    let report = JsonReport {
        summary: JsonSummary { weakened: summary.weakened, strengthened: summary.strengthened, neutral: summary.neutral },
        changes: changes
            .iter()
            .map(|c| JsonChange {
                area: c.area.as_str(),
                subject: &c.subject,
                change: &c.change,
                verdict: c.verdict.as_str(),
                old: c.old.as_deref(),
                new: c.new.as_deref(),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&report).map_err(|e| Failure::failed(format!("cannot serialize the diff: {e}")))?;
    Ok(format!("{text}\n"))
}

/// The counts line, then a table (weakened first), for a pull-request comment.
fn markdown(changes: &[Change], summary: Summary) -> String {
    let mut out = format!("{summary}\n\n");
    if changes.is_empty() {
        out.push_str("no changes\n");
        return out;
    }
    out.push_str("| verdict | area | subject | change |\n|---|---|---|---|\n");
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| c.verdict);
    for c in sorted {
        let verdict = match c.verdict {
            Verdict::Weakened => "**weakened**".to_owned(),
            v => v.as_str().to_owned(),
        };
        out.push_str(&format!("| {verdict} | {} | {} | {} |\n", c.area, code(&c.subject), cell(&c.change)));
    }
    out
}

/// Table-cell text: no line breaks, `|` escaped.
fn cell(s: &str) -> String {
    s.replace(['\r', '\n'], " ").replace('|', "\\|")
}

/// An inline code span that survives backticks in the text.
fn code(s: &str) -> String {
    let fence = if s.contains('`') { "``" } else { "`" };
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{}{pad}{fence}", cell(s))
}

/// The line of the NEW policy a change is about (1 when it cannot be found, or for a bundle).
fn line_of(side: &Side, c: &Change) -> usize {
    side.source.as_deref().and_then(|s| semantic::locate(s, c)).unwrap_or(1)
}

/// One workflow command per weakened change: `::error` when `--fail-on` makes it fail the job,
/// `::warning` otherwise.
fn github(changes: &[Change], new: &Side, failing: bool) -> String {
    let command = if failing { "error" } else { "warning" };
    let mut out = String::new();
    for c in changes.iter().filter(|c| c.verdict == Verdict::Weakened) {
        out.push_str(&format!(
            "::{command} file={},line={},title={}::{}\n",
            escape_property(&new.file),
            line_of(new, c),
            escape_property(&format!("edgeguard diff: {} weakened", c.label())),
            escape_data(&format!("{}: {}", c.label(), c.change)),
        ));
    }
    out
}

/// Workflow-command message escaping (as `@actions/core` does it).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Workflow-command property escaping: message escaping plus `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn findings(changes: &[Change], new: &Side, failing: bool) -> Vec<Finding> {
    changes
        .iter()
        .map(|c| {
            let line = line_of(new, c);
            let width = new.source.as_deref().and_then(|s| s.lines().nth(line.saturating_sub(1))).map_or(0, |l| l.chars().count());
            let (rule_name, level, help) = match c.verdict {
                Verdict::Weakened => (
                    "A policy change weakens what the edge enforces",
                    if failing { Level::Error } else { Level::Warning },
                    Some("make sure the loosening is intended; docs/diff.md lists the rules".to_owned()),
                ),
                Verdict::Strengthened => ("A policy change strengthens what the edge enforces", Level::Note, None),
                Verdict::Neutral => ("A policy change with no effect on what the edge enforces", Level::Note, None),
            };
            Finding {
                rule_id: format!("diff-{}", c.verdict),
                rule_name: rule_name.to_owned(),
                level,
                message: format!("{}: {}", c.label(), c.change),
                file: new.file.clone(),
                line,
                column: 1,
                end_line: line,
                end_column: width.saturating_add(1),
                help,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeguard_compiler::diff::Area;

    fn change(area: Area, subject: &str, verdict: Verdict, text: &str) -> Change {
        Change {
            area,
            subject: subject.to_owned(),
            change: text.to_owned(),
            verdict,
            old: Some("a".to_owned()),
            new: None,
            key: "require_cookie".to_owned(),
        }
    }

    fn sample() -> Vec<Change> {
        vec![
            change(Area::Https, "hsts", Verdict::Weakened, "max-age lowered from 1y to 1d"),
            change(Area::Routes, "/api/admin/**", Verdict::Weakened, "require_cookie \"sb-*\" removed"),
            change(Area::Routes, "/a|b", Verdict::Strengthened, "methods removed: PUT"),
            change(Area::Origins, "blue", Verdict::Neutral, "timeout 10s → 5s"),
        ]
    }

    #[test]
    fn text_groups_by_area_with_markers() {
        let changes = sample();
        let out = text(&changes, Summary::of(&changes));
        assert_eq!(
            out,
            "https:\n\
             - weakened     https hsts: max-age lowered from 1y to 1d\n\
             \n\
             routes:\n\
             - weakened     route /api/admin/**: require_cookie \"sb-*\" removed\n\
             + strengthened route /a|b: methods removed: PUT\n\
             \n\
             origins:\n\
             ~ neutral      origin blue: timeout 10s → 5s\n\
             \n\
             2 weakened, 1 strengthened, 1 neutral\n"
        );
        assert_eq!(text(&[], Summary::default()), "no changes\n");
    }

    #[test]
    fn json_keys_in_order() {
        let changes = sample();
        let out = json(&changes, Summary::of(&changes)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["summary"]["weakened"], 2);
        assert_eq!(v["changes"][1]["area"], "routes");
        assert_eq!(v["changes"][1]["old"], "a");
        assert!(v["changes"][1]["new"].is_null());
        let at = |k: &str| out.find(&format!("\"{k}\":")).unwrap();
        assert!(at("summary") < at("changes"));
        assert!(at("area") < at("subject") && at("subject") < at("change") && at("change") < at("verdict") && at("verdict") < at("old") && at("old") < at("new"));
    }

    #[test]
    fn markdown_escapes_cells_and_puts_weakened_first() {
        let changes = sample();
        let out = markdown(&changes, Summary::of(&changes));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "2 weakened, 1 strengthened, 1 neutral");
        assert_eq!(lines[2], "| verdict | area | subject | change |");
        assert_eq!(lines[4], "| **weakened** | https | `hsts` | max-age lowered from 1y to 1d |");
        assert_eq!(lines[6], "| strengthened | routes | `/a\\|b` | methods removed: PUT |");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(markdown(&[], Summary::default()), "0 weakened, 0 strengthened, 0 neutral\n\nno changes\n");
    }

    #[test]
    fn github_annotations_for_weakened_changes_only() {
        let source = "version = 1\n[[routes]]\npath = \"/api/admin/**\"\nrequire_cookie = \"sb-*\"\n".to_owned();
        let bundle = edgeguard_compiler::compile(&source, &Options::default()).bundle.unwrap();
        let side = Side { file: "p,1.toml".to_owned(), source: Some(source), bundle };
        let out = github(&sample(), &side, true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "::error file=p%2C1.toml,line=1,title=edgeguard diff%3A https hsts weakened::https hsts: max-age lowered from 1y to 1d");
        assert!(lines[1].starts_with("::error file=p%2C1.toml,line=4,"), "{}", lines[1]);
        assert!(github(&sample(), &side, false).starts_with("::warning "));
        let f = findings(&sample(), &side, false);
        assert_eq!((f[1].rule_id.as_str(), f[1].level, f[1].line, f[1].end_column), ("diff-weakened", Level::Warning, 4, 24));
        assert_eq!((f[2].rule_id.as_str(), f[2].level), ("diff-strengthened", Level::Note));
        assert_eq!(f[3].rule_id, "diff-neutral");
    }
}
