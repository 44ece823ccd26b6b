//! `edgeguard ready` on QuoteKit's fixtures (every line of the report asserted, its line numbers
//! looked up in the fixtures), its formats, its exit codes, and one broken input per criterion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

fn edgeguard() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("edgeguard")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// 1-based line of the first line of `file` (under the repository) that contains `needle`.
fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not in {file}")) + 1
}

const QUOTEKIT_INPUTS: [&str; 19] = [
    "--wrangler", "fixtures/deploy/wrangler.toml",
    "--fly", "fixtures/deploy/fly.toml",
    "--catalog", "fixtures/quotekit.env.toml",
    "--fly-secrets", "fixtures/env/production.fly-secrets.json",
    "--wrangler-secrets", "fixtures/env/production.wrangler-secrets.json",
    "--fly-env", "staging=fixtures/deploy/fly.staging.toml",
    "--fly-secrets", "staging=fixtures/env/staging.fly-secrets.json",
    "--cases", "fixtures/quotekit.cases.toml",
    "--runbook", "fixtures/deploy/RUNBOOK.md",
    "fixtures/quotekit.toml",
];

/// `ready` with QuoteKit's inputs, run from the repository root (paths as a CI job writes them).
fn quotekit(format: &str) -> (i32, String, String) {
    let out = edgeguard().current_dir(root()).arg("ready").args(QUOTEKIT_INPUTS).args(["--format", format]).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn quotekit_report_every_line() {
    let (code, out, _) = quotekit("text");
    // The fixture's demo API key and its untested routes are real blockers: NO-GO, exit 1.
    assert_eq!(code, 1, "{out}");
    let fly = |n: &str| line_of("fixtures/deploy/fly.toml", n);
    let policy = |n: &str| line_of("fixtures/quotekit.toml", n);
    let runbook = |n: &str| line_of("fixtures/deploy/RUNBOOK.md", n);
    let expected = format!(
        "edgeguard ready — fixtures/quotekit.toml (production)

Gate 1 — Core infrastructure: unknown
  pass     health-check   Health check endpoint configured
           Fly checks GET /api/health; the edge lets it through (no block, limit or access rule) and probes the same path itself (at most once per 10 s)
           at fixtures/deploy/fly.toml:{}, fixtures/quotekit.toml:{}
  unknown  health-live    Health check passing
           no --url: the live edge's health endpoint was not requested
  pass     memory         Memory allocation (512 MB minimum)
           [[vm]] gives each Machine 1024 MB
           at fixtures/deploy/fly.toml:{}
  pass     env            All environment variables configured
           every variable the catalog requires in production and staging is set where it lives, in the right format (6 inputs)
           at fixtures/quotekit.env.toml, fixtures/env/production.fly-secrets.json, fixtures/env/staging.fly-secrets.json, fixtures/deploy/fly.staging.toml, fixtures/env/production.wrangler-secrets.json, fixtures/deploy/fly.toml, fixtures/deploy/wrangler.toml
  pass     fly-config     Fly.io configuration validated
           edgeguard doctor finds no error in it
           at fixtures/deploy/fly.toml

Gate 2 — Production readiness: fail
  pass     https          HTTPS enforced, HSTS
           http → https redirect; HSTS max-age=31536000 (365 days)
           at fixtures/quotekit.toml:{}, fixtures/quotekit.toml:{}
  pass     headers        Security headers and CSP
           GET / gets an enforced CSP, frame protection, nosniff and a Referrer-Policy; the CSP has 4 finding(s) from edgeguard check, first W010 at line {}: script-src allows 'unsafe-inline' (CSP Evaluator: SCRIPT_UNSAFE_INLINE, high)
           at fixtures/quotekit.toml:{}, fixtures/quotekit.toml:{}
  pass     rate-limits    Rate limits on abuse-prone routes
           every route that takes POST/PUT/PATCH/DELETE has an enforced limit (admin, api, pages, quote-email, webhook)
           at fixtures/quotekit.toml:{}
  fail     api-keys       API keys
           this hash is of a key printed in edgeguard's own docs or fixtures: anyone can send it (W062): make a key of your own (`openssl rand -hex 32`) and put its SHA-256 here
           at fixtures/quotekit.toml:{}
  unknown  slo            Performance targets (API p95 < 200 ms)
           [slo.api-latency] sets p95 ≤ 200 ms over 8 route(s), measured fleet-wide and paged on; a config cannot show whether it holds: see the edge's dashboard (/__edge/dashboard)
           at fixtures/quotekit.toml:{}
  fail     tests          Routes tested (policy test cases)
           102 cases pass, but the cases reach 20 of the policy's 24 routes (not reached: /api/webhooks, /api/quotes/bulk-delete, /api/quotes/bulk-status, /api/formbricks/test): the roadmap asks for every route tested
           at fixtures/quotekit.cases.toml

Gate 3 — Deployment ready: unknown
  pass     parity         Staging/production parity
           production and staging have the same variables, each with its own secrets
           at fixtures/quotekit.env.toml
  pass     blue-green     Blue-green levers configured
           2 origins (blue, green); blue serves, canary green at 0%, failover on; wrangler.toml has both levers
           at fixtures/quotekit.toml:{}, fixtures/deploy/wrangler.toml:{}
  pass     worker-config  Edge worker configuration validated
           edgeguard doctor finds no error in it (its `main` is not built yet: edgeguard build before wrangler deploy)
           at fixtures/deploy/wrangler.toml
  pass     rollback       Rollback documented
           the runbook covers a rollback and names the lever (EDGE_CANARY_PERCENT)
           at fixtures/deploy/RUNBOOK.md:{}, fixtures/deploy/RUNBOOK.md:{}
  unknown  live           End-to-end: the live edge matches the policy
           no --url: the deployed edge was not checked (edgeguard verify)

ready: NO-GO — 11 pass, 2 fail, 3 unknown (gate 1 unknown, gate 2 fail, gate 3 unknown)
",
        fly("path = \"/api/health\""),
        policy("probe_path ="),
        fly("memory = "),
        policy("redirect = true"),
        policy("hsts = {"),
        policy("script-src = ["),
        policy("[headers]"),
        policy("[csp]"),
        policy("[limits.api]"),
        policy("sha256 = ["),
        policy("[slo.api-latency]"),
        policy("[deploy]"),
        line_of("fixtures/deploy/wrangler.toml", "EDGE_ACTIVE_ORIGIN ="),
        runbook("## Rollback"),
        runbook("during the canary"),
    );
    // Line by line, so a difference names its line.
    for (n, (got, want)) in out.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {}", n + 1);
    }
    assert_eq!(out.lines().count(), expected.lines().count(), "{out}");
}

#[test]
fn quotekit_json_matches_the_text() {
    let (code, out, _) = quotekit("json");
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["verdict"].as_str(), v["ok"].as_bool(), v["pass"].as_u64(), v["fail"].as_u64(), v["unknown"].as_u64()), (Some("no-go"), Some(false), Some(11), Some(2), Some(3)));
    let ids: Vec<Vec<&str>> = v["gates"].as_array().unwrap().iter().map(|g| g["criteria"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect()).collect();
    assert_eq!(ids, [
        vec!["health-check", "health-live", "memory", "env", "fly-config"],
        vec!["https", "headers", "rate-limits", "api-keys", "slo", "tests"],
        vec!["parity", "blue-green", "worker-config", "rollback", "live"],
    ]);
    let keys = &v["gates"][1]["criteria"][3];
    assert_eq!(keys["status"], "fail");
    assert_eq!(keys["at"][0]["what"], "fixtures/quotekit.toml");
    assert_eq!(keys["at"][0]["line"], line_of("fixtures/quotekit.toml", "sha256 = ["));
}

#[test]
fn quotekit_markdown_and_annotations() {
    let (code, md, _) = quotekit("markdown");
    assert_eq!(code, 1);
    assert!(md.starts_with("<!-- edgeguard-ready -->\n## edgeguard ready: ❌ NO-GO\n\n`fixtures/quotekit.toml` (production)\n"), "{md}");
    assert_eq!(md.matches("| | criterion | why | where |\n|---|---|---|---|\n").count(), 3);
    assert!(md.contains("\n### ❔ Gate 1 — Core infrastructure\n"));
    assert!(md.contains("\n### ❌ Gate 2 — Production readiness\n"));
    assert_eq!(md.lines().filter(|l| l.starts_with("| ✅ ")).count(), 11);
    assert_eq!(md.lines().filter(|l| l.starts_with("| ❌ ")).count(), 2);
    assert_eq!(md.lines().filter(|l| l.starts_with("| ❔ ")).count(), 3);
    assert!(md.contains(&format!("| ❌ | **API keys** `api-keys` | this hash is of a key printed in edgeguard's own docs or fixtures: anyone can send it (W062): make a key of your own (`openssl rand -hex 32`) and put its SHA-256 here | `fixtures/quotekit.toml:{}` |\n", line_of("fixtures/quotekit.toml", "sha256 = ["))), "{md}");
    assert!(md.ends_with("\nNO-GO — 11 pass, 2 fail, 3 unknown (gate 1 unknown, gate 2 fail, gate 3 unknown)\n"), "{md}");

    let (code, gh, err) = quotekit("github");
    assert_eq!(code, 1);
    let lines: Vec<&str> = gh.lines().collect();
    assert_eq!(lines.len(), 5, "{gh}");
    assert_eq!(lines[0], "::warning title=ready health-live::Health check passing: no --url: the live edge's health endpoint was not requested");
    assert!(lines[1].starts_with(&format!("::error file=fixtures/quotekit.toml,line={},title=ready api-keys::API keys: ", line_of("fixtures/quotekit.toml", "sha256 = ["))), "{gh}");
    assert!(lines[3].starts_with("::error file=fixtures/quotekit.cases.toml,title=ready tests::"), "{gh}");
    assert!(err.contains("ready: NO-GO"), "{err}");
}

/// QuoteKit's inputs in a temporary directory, editable.
struct Copy {
    dir: TempDir,
}

impl Copy {
    fn quotekit() -> Copy {
        let c = Copy { dir: tempfile::tempdir().unwrap() };
        for f in ["quotekit.toml", "quotekit.env.toml", "deploy/fly.toml", "deploy/wrangler.toml", "deploy/RUNBOOK.md", "env/production.fly-secrets.json"] {
            let to = c.dir.path().join(f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join("fixtures").join(f), to).unwrap();
        }
        // A key of its own: the demo key's hash is the fixture's one known blocker.
        c.edit("quotekit.toml", "f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a", "3a4f1e0d5b8c7a6e9f2d1c0b3a4e5f6d7c8b9a0e1f2d3c4b5a6e7f8d9c0b1a2e");
        c
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let p = self.dir.path().join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "`{from}` not in {file}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }

    fn ready(&self, extra: &[&str]) -> (i32, Value) {
        let out = edgeguard()
            .current_dir(self.dir.path())
            .args(["ready", "quotekit.toml", "--wrangler", "deploy/wrangler.toml", "--fly", "deploy/fly.toml", "--catalog", "quotekit.env.toml"])
            .args(["--fly-secrets", "env/production.fly-secrets.json", "--runbook", "deploy/RUNBOOK.md", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), v)
    }
}

fn criterion<'v>(report: &'v Value, id: &str) -> &'v Value {
    report["gates"].as_array().unwrap().iter().flat_map(|g| g["criteria"].as_array().unwrap()).find(|c| c["id"] == id).unwrap()
}

#[test]
fn unknown_is_not_a_pass() {
    let c = Copy::quotekit();
    let (code, v) = c.ready(&[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "incomplete");
    assert_eq!(v["fail"], 0);
    // No staging inputs, no cases, no URL, no SLOs.
    let unknown: Vec<&str> = ["health-live", "slo", "tests", "parity", "live"].into_iter().filter(|id| criterion(&v, id)["status"] == "unknown").collect();
    assert_eq!(unknown.len(), 5, "{v}");
    assert_eq!(criterion(&v, "parity")["why"], "inputs for one environment only: give the other's as ENV=FILE");
    let (code, v) = c.ready(&["--deny-unknown"]);
    assert_eq!(code, 1);
    assert_eq!(v["ok"], false);
}

#[test]
fn each_criterion_fails_on_its_own_input() {
    let c = Copy::quotekit();
    c.edit("deploy/fly.toml", "memory = \"1gb\"", "memory = \"256mb\"");
    c.edit("deploy/fly.toml", "path = \"/api/health\"", "path = \"/api/debug-health\"");
    c.edit("quotekit.toml", "hsts = { max_age = \"1y\"", "hsts = { max_age = \"30d\"");
    c.edit("quotekit.toml", "path = \"/api/webhooks\"\nmethods = [\"POST\"]\nmax_body = \"1MiB\"\nlimit = \"webhook\"", "path = \"/api/webhooks\"\nmethods = [\"POST\"]\nmax_body = \"1MiB\"\nlimit = \"none\"");
    c.edit("deploy/wrangler.toml", "EDGE_ACTIVE_ORIGIN = \"blue\"", "EDGE_ACTIVE_ORIGIN = \"purple\"");
    c.edit("deploy/RUNBOOK.md", "## Rollback", "## Going back");
    c.edit("deploy/RUNBOOK.md", "# QuoteKit: release and rollback", "# QuoteKit: releases");
    let secrets = std::fs::read_to_string(c.dir.path().join("env/production.fly-secrets.json")).unwrap().replace("\"STRIPE_SECRET_KEY\"", "\"STRIPE_KEY\"");
    std::fs::write(c.dir.path().join("env/production.fly-secrets.json"), secrets).unwrap();
    let (code, v) = c.ready(&[]);
    assert_eq!(code, 1);
    let status = |id: &str| criterion(&v, id)["status"].as_str().unwrap().to_owned();
    let why = |id: &str| criterion(&v, id)["why"].as_str().unwrap().to_owned();
    for id in ["health-check", "memory", "env", "fly-config", "https", "rate-limits", "blue-green", "worker-config", "rollback"] {
        assert_eq!(status(id), "fail", "{id}: {}", why(id));
    }
    assert!(why("health-check").starts_with("D023 [[http_service.checks]] path `/api/debug-health` is blocked at the edge (route `/api/debug-*` answers 404)"), "{}", why("health-check"));
    assert_eq!(why("memory"), "[[vm]] gives each Machine 256 MB; the roadmap asks for at least 512 MB (Next.js runs out of memory below that)");
    assert!(why("env").starts_with("D050 STRIPE_SECRET_KEY is missing from fly secrets for production"), "{}", why("env"));
    assert_eq!(why("https"), "HSTS max-age=2592000 (30 days): less than the year browsers and the MDN Observatory expect");
    assert_eq!(why("rate-limits"), "1 route(s) take POST/PUT/PATCH/DELETE with no enforced limit: /api/webhooks");
    assert_eq!(criterion(&v, "rate-limits")["at"][0]["line"], line_of("fixtures/quotekit.toml", "path = \"/api/webhooks\""));
    assert!(why("blue-green").starts_with("D008 EDGE_ACTIVE_ORIGIN = \"purple\" names no origin"), "{}", why("blue-green"));
    // The lever lines come before the only remaining mention of a rollback.
    assert!(why("rollback").starts_with("the runbook mentions a rollback but none of the levers that do one (EDGE_ACTIVE_ORIGIN, EDGE_CANARY_PERCENT"), "{}", why("rollback"));
    std::fs::write(c.dir.path().join("deploy/RUNBOOK.md"), "# Releases\n\n1. fly deploy\n").unwrap();
    let (_, v2) = c.ready(&[]);
    assert_eq!(criterion(&v2, "rollback")["why"], "the runbook never mentions a rollback");
    // Where: the finding's file and line.
    assert_eq!(criterion(&v, "memory")["at"][0]["line"], line_of("fixtures/deploy/fly.toml", "memory = "));
}

#[test]
fn a_broken_catalog_stops_ready_with_its_diagnostics() {
    let c = Copy::quotekit();
    c.edit("quotekit.env.toml", "source = \"fly-secret\"", "source = \"fly-secrets\"");
    let out = edgeguard().current_dir(c.dir.path()).args(["ready", "quotekit.toml", "--catalog", "quotekit.env.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[C004]: `vars.SUPABASE_SERVICE_ROLE_KEY.source` cannot be \"fly-secrets\""), "{err}");
    assert!(err.contains("help: did you mean \"fly-secret\"?"), "{err}");
    assert!(out.stdout.is_empty());
}
