//! `edgeguard doctor`: the policy against QuoteKit's deployment files (fixtures/deploy/) and
//! broken variants of them, written to temporary directories, as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

fn edgeguard() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("edgeguard")
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)
}

fn read_fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap()
}

/// `text` with `from` replaced once; the test is wrong if `from` is not there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not found");
    text.replacen(from, to, 1)
}

/// A temporary deployment: policy.toml, wrangler.toml and fly.toml (QuoteKit's by default).
struct Deploy {
    dir: TempDir,
}

impl Deploy {
    fn quotekit() -> Deploy {
        let d = Deploy { dir: tempfile::tempdir().unwrap() };
        d.write("policy.toml", &read_fixture("quotekit.toml"));
        d.write("wrangler.toml", &read_fixture("deploy/wrangler.toml"));
        d.write("fly.toml", &read_fixture("deploy/fly.toml"));
        d
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// Replace `from` by `to` in one of the files.
    fn edit(&self, name: &str, from: &str, to: &str) {
        let text = edit(&self.read(name), from, to);
        self.write(name, &text);
    }

    /// `doctor policy.toml --wrangler wrangler.toml --fly fly.toml --format json` plus `extra`.
    fn doctor(&self, extra: &[&str]) -> (i32, Value) {
        self.doctor_with("wrangler.toml", extra)
    }

    /// The same with another wrangler file (wrangler.json, wrangler.jsonc).
    fn doctor_with(&self, wrangler: &str, extra: &[&str]) -> (i32, Value) {
        let out = edgeguard()
            .current_dir(self.path())
            .args(["doctor", "policy.toml", "--wrangler", wrangler, "--fly", "fly.toml", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), json)
    }
}

fn ids(report: &Value) -> BTreeSet<String> {
    report["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    let i = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not in the text"));
    u64::try_from(i).unwrap() + 1
}

// ------------------------------------------------------------------------------- the fixtures

#[test]
fn quotekit_deployment_passes() {
    let d = Deploy::quotekit();
    let (code, report) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["warnings"], 0, "{report:#}");
    // Notes only: the shell is not built in the temp dir, force_https is redundant behind the
    // edge, and Fly's 5 s check timeout is looser than the edge's 2 s probe.
    assert_eq!(ids(&report), BTreeSet::from(["D013".to_owned(), "D022".to_owned(), "D030".to_owned()]));
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["severity"] == "info"));
    // Keys in a fixed order (the parsed Value above sorts them; look at the text).
    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--fly", "fly.toml", "--format", "json"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let at = |key: &str| text.find(&format!("\n  \"{key}\": ")).unwrap_or_else(|| panic!("{key}: {text}"));
    let order = ["ok", "errors", "warnings", "infos", "checked", "findings"].map(at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("\"id\": \"D022\",\n      \"severity\": \"info\",\n      \"file\": \"fly.toml\",\n      \"line\": "), "{text}");
}

#[test]
fn fixture_files_in_place_pass() {
    edgeguard()
        .arg("doctor")
        .arg(fixture("quotekit.toml"))
        .arg("--wrangler")
        .arg(fixture("deploy/wrangler.toml"))
        .arg("--fly")
        .arg(fixture("deploy/fly.toml"))
        .arg("--deny-warnings")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("doctor: 0 errors, 0 warnings"));
}

#[test]
fn finding_shape_and_text_format() {
    let d = Deploy::quotekit();
    d.write("fly.toml", &format!("{}\n[deploy]\n  release_command = \"npm run build\"\n", d.read("fly.toml")));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    let f = finding(&report, "D031");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["file"], "fly.toml");
    assert_eq!(f["line"], line_of(&d.read("fly.toml"), "release_command"));
    assert!(f["message"].as_str().unwrap().contains("npm run build"));
    assert!(!f["fix"].as_str().unwrap().is_empty());

    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--fly", "fly.toml"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    let at = line_of(&d.read("fly.toml"), "release_command");
    assert!(text.contains(&format!("error[D031]: fly.toml:{at}: release_command `npm run build`")), "{text}");
    assert!(text.contains("\n  fix: build in the Dockerfile"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("doctor: 1 error, 0 warnings"), "{text}");
}

#[test]
fn github_format() {
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "EDGE_ACTIVE_ORIGIN = \"blue\"", "EDGE_ACTIVE_ORIGIN = \"purple\"");
    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--wrangler", "wrangler.toml", "--format", "github"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let at = line_of(&d.read("wrangler.toml"), "EDGE_ACTIVE_ORIGIN");
    assert!(stdout.contains(&format!("::error file=wrangler.toml,line={at},title=D008::")), "{stdout}");
    assert!(stdout.contains("::notice file=wrangler.toml,line="), "info findings are notices: {stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("doctor: 1 error"));
}

// ------------------------------------------------------------------ the broken variants asked for

#[test]
fn health_path_blocked() {
    let d = Deploy::quotekit();
    d.edit("policy.toml", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"none\"", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nblock = 404");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "D023");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["file"], "fly.toml");
    assert_eq!(f["line"], line_of(&d.read("fly.toml"), "path = \"/api/health\""));
    assert!(f["message"].as_str().unwrap().contains("/api/health"));
}

#[test]
fn health_path_rate_limited() {
    let d = Deploy::quotekit();
    d.edit("policy.toml", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"none\"", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"api\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    let f = finding(&report, "D024");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("limit `api`"), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("limit = \"none\""));
}

#[test]
fn health_path_behind_cookie_or_key() {
    let d = Deploy::quotekit();
    d.edit("policy.toml", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"none\"", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"none\"\nrequire_cookie = \"sb-*-auth-token*\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert!(finding(&report, "D025")["message"].as_str().unwrap().contains("require_cookie"));

    // Fly checking the metrics endpoint: API key, its own limit, and GET only.
    let d = Deploy::quotekit();
    d.edit("fly.toml", "path = \"/api/health\"", "path = \"/api/admin/metrics\"");
    d.edit("fly.toml", "method = \"GET\"", "method = \"post\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    let got = ids(&report);
    for id in ["D024", "D025", "D026", "D028"] {
        assert!(got.contains(id), "{id} missing: {report:#}");
    }
    assert!(finding(&report, "D025")["message"].as_str().unwrap().contains("api_key"));
    assert!(finding(&report, "D026")["message"].as_str().unwrap().contains("POST"));
}

#[test]
fn fly_checking_the_edge_health_path() {
    let d = Deploy::quotekit();
    d.edit("fly.toml", "path = \"/api/health\"", "path = \"/__edge/health\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&report, "D027")["severity"], "error");
}

#[test]
fn release_command_that_builds() {
    for command in ["npm run build", "yarn build", "npx next build", "pnpm build && node migrate.js", "bun run build"] {
        let d = Deploy::quotekit();
        d.write("fly.toml", &format!("{}\n[deploy]\n  release_command = \"{command}\"\n", d.read("fly.toml")));
        let (code, report) = d.doctor(&[]);
        assert_eq!(code, 1, "{command}");
        assert_eq!(finding(&report, "D031")["severity"], "error", "{command}");
    }
    for command in ["npx prisma migrate deploy", "node scripts/rebuild-index.js", "npm run migrate"] {
        let d = Deploy::quotekit();
        d.write("fly.toml", &format!("{}\n[deploy]\n  release_command = \"{command}\"\n", d.read("fly.toml")));
        let (code, report) = d.doctor(&[]);
        assert_eq!(code, 0, "{command}: {report:#}");
    }
}

#[test]
fn origin_secret_in_vars() {
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "EDGE_ORIGINS = \"\"", "EDGE_ORIGINS = \"\"\nEDGE_ORIGIN_AUTH = \"s3cret-shared-with-the-origin\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    let f = finding(&report, "D010");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["line"], line_of(&d.read("wrangler.toml"), "EDGE_ORIGIN_AUTH = "));
    assert!(f["fix"].as_str().unwrap().contains("wrangler secret put EDGE_ORIGIN_AUTH"));

    // In an environment's vars too, whichever --env is checked.
    let d = Deploy::quotekit();
    d.write("wrangler.toml", &format!("{}\n[env.staging.vars]\nEDGE_ORIGIN_AUTH = \"x\"\n", d.read("wrangler.toml")));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert!(finding(&report, "D010")["message"].as_str().unwrap().contains("[env.staging.vars]"));
}

/// QuoteKit's wrangler.toml declares the limiter (quote-email is global): these lines.
const LIMITER_BLOCK: &str = "[[durable_objects.bindings]]\nname = \"EDGEGUARD_LIMITER\"\nclass_name = \"EdgeguardLimiter\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"EdgeguardLimiter\"]\n";

#[test]
fn other_secrets_in_vars() {
    let d = Deploy::quotekit();
    // The worker's PostHog key: an error, as EDGE_ORIGIN_AUTH is.
    d.write("wrangler.toml", &format!("{}\n[env.staging.vars]\nPOSTHOG_KEY = \"phc_0123\"\n", d.read("wrangler.toml")));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "D010");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().starts_with("POSTHOG_KEY is in [env.staging.vars]: the PostHog project key"), "{f}");
    assert_eq!(f["line"], line_of(&d.read("wrangler.toml"), "POSTHOG_KEY"));
    assert!(f["fix"].as_str().unwrap().contains("wrangler secret put POSTHOG_KEY"));

    // Names that end like a secret's: warnings, one per var, whatever the case.
    let d = Deploy::quotekit();
    let vars = ["STRIPE_SECRET_KEY", "SUPABASE_SERVICE_TOKEN", "db_password", "ADMIN_SECRET", "BASIC_AUTH"];
    let lines: String = vars.iter().map(|v| format!("{v} = \"x\"\n")).collect();
    d.edit("wrangler.toml", "EDGE_ORIGINS = \"\"\n", &format!("EDGE_ORIGINS = \"\"\n{lines}"));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0, "warnings only: {report:#}");
    let d010: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "D010").collect();
    assert_eq!(d010.len(), vars.len(), "{report:#}");
    for var in vars {
        let f = d010.iter().find(|f| f["message"].as_str().unwrap().starts_with(&format!("{var} is in [vars]: its name ends in _"))).unwrap_or_else(|| panic!("{var}: {report:#}"));
        assert_eq!(f["severity"], "warning", "{f}");
        assert_eq!(f["line"], line_of(&d.read("wrangler.toml"), &format!("{var} = ")));
    }
    assert_eq!(d.doctor(&["--deny-warnings"]).0, 1);

    // edgeguard's own levers are not secrets, nor are names that only contain a secret word.
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "EDGE_ORIGINS = \"\"\n", "EDGE_ORIGINS = \"\"\nEDGE_ORIGIN_AUTH_HEADER = \"x-edgeguard-auth\"\nEDGE_POSTHOG_HOST = \"https://eu.i.posthog.com\"\nKEYSTONE_URL = \"https://k.example\"\nTOKEN_TTL = \"60\"\n");
    let (code, report) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!ids(&report).contains("D010"));
}

#[test]
fn global_limit_needs_the_durable_object() {
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", LIMITER_BLOCK, "");
    d.edit("policy.toml", "[limits.api]\nrate = \"100/15m\"\nburst = 20\nkey = \"session:sub\"\nscope = \"local\"", "[limits.api]\nrate = \"100/15m\"\nburst = 20\nkey = \"session:sub\"\nscope = \"global\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "D003");
    assert_eq!(f["severity"], "error");
    let message = f["message"].as_str().unwrap();
    let scope_line = line_of(&d.read("policy.toml"), "scope = \"global\"");
    assert!(message.contains("`api`, `quote-email`") && message.contains(&format!("policy.toml:{scope_line}")), "{message}");
    assert!(f["fix"].as_str().unwrap().contains("EDGEGUARD_LIMITER") && f["fix"].as_str().unwrap().contains("EdgeguardLimiter"));
    assert_eq!(finding(&report, "D004")["severity"], "error");

    // The binding alone: the migration is still missing.
    let binding = "\n[[durable_objects.bindings]]\nname = \"EDGEGUARD_LIMITER\"\nclass_name = \"EdgeguardLimiter\"\n";
    d.write("wrangler.toml", &format!("{}{binding}", d.read("wrangler.toml")));
    let (_, report) = d.doctor(&[]);
    assert!(!ids(&report).contains("D003"));
    assert!(ids(&report).contains("D004"));

    // A key-value backed class: works, but not what a new deployment should create.
    let kv = format!("{}\n[[migrations]]\ntag = \"v1\"\nnew_classes = [\"EdgeguardLimiter\"]\n", d.read("wrangler.toml"));
    d.write("wrangler.toml", &kv);
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(finding(&report, "D005")["severity"], "warning");
    assert!(!ids(&report).contains("D004"));

    // Binding and SQLite migration: nothing to say.
    d.write("wrangler.toml", &kv.replace("new_classes", "new_sqlite_classes"));
    let (code, report) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(ids(&report).is_disjoint(&BTreeSet::from(["D003".to_owned(), "D004".to_owned(), "D005".to_owned(), "D017".to_owned()])));

    // The binding under another name is not found by the worker.
    d.write("wrangler.toml", &kv.replace("new_classes", "new_sqlite_classes").replace("name = \"EDGEGUARD_LIMITER\"", "name = \"LIMITER\""));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert!(finding(&report, "D003")["message"].as_str().unwrap().contains("`LIMITER`"));
}

#[test]
fn limiter_binding_without_global_limit_or_class() {
    let d = Deploy::quotekit();
    // QuoteKit's binding, with its one global limit made local.
    d.edit("policy.toml", "[limits.quote-email]\nrate = \"5/1h\"\nkey = \"session:sub\"\nscope = \"global\"", "[limits.quote-email]\nrate = \"5/1h\"\nkey = \"session:sub\"\nscope = \"local\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0);
    assert_eq!(finding(&report, "D017")["severity"], "info");
    assert!(!ids(&report).contains("D006"), "main is not built here: nothing to read");

    // A built worker exports the class; an entry that does not makes wrangler deploy fail.
    edgeguard().current_dir(d.path()).args(["build", "policy.toml", "-o", "edge"]).assert().success();
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!ids(&report).contains("D006") && !ids(&report).contains("D013"), "{report:#}");
    d.write("edge/index.mjs", "export default { fetch() { return new Response('old build'); } };\n");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&report, "D006")["severity"], "error");
}

#[test]
fn active_origin_naming_no_origin() {
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "EDGE_ACTIVE_ORIGIN = \"blue\"", "EDGE_ACTIVE_ORIGIN = \"purple\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    let f = finding(&report, "D008");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("purple") && f["fix"].as_str().unwrap().contains("blue, green"));
    assert_eq!(f["line"], line_of(&d.read("wrangler.toml"), "EDGE_ACTIVE_ORIGIN"));
    // What the shell does: it drops the lever and keeps serving (not "fails every request").
    assert_ignored_override(f);
}

/// The message of D008/D009 says what the shell does with an invalid lever.
fn assert_ignored_override(f: &Value) {
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("logs `ignoring invalid deploy override`") && message.contains("silently does not happen"), "{message}");
    assert!(!message.contains("fails every request"), "{message}");
}

// ------------------------------------------------------------------- wrangler.json / .jsonc

/// fixtures/deploy/wrangler.toml as wrangler's JSONC: comments and trailing commas.
const WRANGLER_JSONC: &str = r#"// The edge in front of QuoteKit, as wrangler.jsonc.
{
  "name": "quotekit-edge",
  "main": "edge/index.mjs",
  "compatibility_date": "2025-09-01",
  "workers_dev": false,
  /* edge/policy.egb is uploaded as a Data module */
  "rules": [{ "type": "Data", "globs": ["**/*.egb"], "fallthrough": true }],
  "routes": [
    { "pattern": "lawnquote.online", "custom_domain": true },
    { "pattern": "www.lawnquote.online", "custom_domain": true },
  ],
  "vars": {
    "EDGE_ACTIVE_ORIGIN": "blue",
    "EDGE_CANARY_PERCENT": "0",
    "EDGE_SHADOW": "",
    "EDGE_ORIGINS": "", // EDGE_ORIGIN_AUTH is a secret
  },
  // the global limiter (quote-email)
  "durable_objects": { "bindings": [{ "name": "EDGEGUARD_LIMITER", "class_name": "EdgeguardLimiter" }] },
  "migrations": [{ "tag": "v1", "new_sqlite_classes": ["EdgeguardLimiter"] }],
}
"#;

/// (id, severity, message) of each finding, with the wrangler file's name replaced by `W`.
fn findings_without_lines(report: &Value, name: &str) -> Vec<(String, String, String)> {
    let text = |f: &Value, k: &str| f[k].as_str().unwrap().replace(name, "W");
    report["findings"].as_array().unwrap().iter().map(|f| (text(f, "id"), text(f, "severity"), text(f, "message"))).collect()
}

#[test]
fn wrangler_json_and_jsonc_give_the_toml_findings() {
    let d = Deploy::quotekit();
    let toml_value: serde_json::Value = toml::from_str(&d.read("wrangler.toml")).unwrap();
    d.write("wrangler.json", &serde_json::to_string_pretty(&toml_value).unwrap());
    d.write("wrangler.jsonc", WRANGLER_JSONC);
    let (_, expected) = d.doctor(&["--deny-warnings"]);
    let expected = findings_without_lines(&expected, "wrangler.toml");
    for name in ["wrangler.json", "wrangler.jsonc"] {
        let (code, report) = d.doctor_with(name, &["--deny-warnings"]);
        assert_eq!(code, 0, "{name}: {report:#}");
        assert!(report["checked"].as_array().unwrap().iter().any(|c| c == name), "{report:#}");
        assert_eq!(findings_without_lines(&report, name), expected, "{name}: {report:#}");
    }

    // Checks see into the JSONC, and point at its lines.
    d.write("wrangler.jsonc", &edit(WRANGLER_JSONC, "\"EDGE_ACTIVE_ORIGIN\": \"blue\"", "\"EDGE_ACTIVE_ORIGIN\": \"purple\""));
    let (code, report) = d.doctor_with("wrangler.jsonc", &[]);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "D008");
    assert_eq!(f["file"], "wrangler.jsonc");
    assert_eq!(f["line"], line_of(&d.read("wrangler.jsonc"), "EDGE_ACTIVE_ORIGIN"));
    d.write("wrangler.jsonc", &edit(WRANGLER_JSONC, "  \"compatibility_date\": \"2025-09-01\",\n", "  \"compatibility_date\": null,\n"));
    let (_, report) = d.doctor_with("wrangler.jsonc", &[]);
    assert!(finding(&report, "D007")["message"].as_str().unwrap().starts_with("wrangler.jsonc has no `compatibility_date`"), "{report:#}");

    // A syntax error is D001, at its line; so is JSON that is not an object.
    d.write("wrangler.json", "{\n  \"name\": \"x\",\n  \"main\" \"edge/index.mjs\"\n}\n");
    d.write("wrangler.jsonc", "[\"not\", \"an object\"]\n");
    for (name, line) in [("wrangler.json", Value::from(3)), ("wrangler.jsonc", Value::Null)] {
        let (code, report) = d.doctor_with(name, &[]);
        assert_eq!(code, 1, "{report:#}");
        let f = finding(&report, "D001");
        assert!(f["message"].as_str().unwrap().starts_with(&format!("{name} is not valid JSON: ")), "{f}");
        assert_eq!(f["line"], line, "{f}");
    }
}

// --------------------------------------------------------------------------- more wrangler.toml

#[test]
fn canary_percent_and_shadow_and_origins_vars() {
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "EDGE_CANARY_PERCENT = \"0\"", "EDGE_CANARY_PERCENT = \"150\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&report, "D009")["severity"], "error");
    assert_ignored_override(finding(&report, "D009"));

    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "EDGE_CANARY_PERCENT = \"0\"", "EDGE_CANARY_PERCENT = 5");
    d.edit("wrangler.toml", "EDGE_SHADOW = \"\"", "EDGE_SHADOW = \"1\"");
    d.edit("wrangler.toml", "EDGE_ORIGINS = \"\"", "EDGE_ORIGINS = \"blue=https://quotekit-blue.fly.dev,red=http://red.example\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0, "a number is a valid percent: {report:#}");
    assert_eq!(finding(&report, "D014")["severity"], "warning");
    let d015: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "D015").collect();
    assert_eq!(d015.len(), 2, "unknown origin `red` and its http URL: {report:#}");
    let (code, _) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 1);

    // A canary share with no canary in the policy does nothing.
    let d = Deploy::quotekit();
    d.edit("policy.toml", "canary = { origin = \"green\", percent = 0 }\n", "");
    d.edit("wrangler.toml", "EDGE_CANARY_PERCENT = \"0\"", "EDGE_CANARY_PERCENT = \"25\"");
    let (_, report) = d.doctor(&[]);
    assert_eq!(finding(&report, "D016")["severity"], "warning");
}

#[test]
fn main_compat_date_routes_and_build() {
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "main = \"edge/index.mjs\"", "main = \"crates/worker/js/shell.mjs\"");
    d.edit("wrangler.toml", "compatibility_date = \"2025-09-01\"\n", "");
    d.edit("wrangler.toml", "  { pattern = \"www.lawnquote.online\", custom_domain = true },\n", "");
    d.edit("wrangler.toml", "  { pattern = \"lawnquote.online\", custom_domain = true },\n", "  \"lawnquote.online/api/*\",\n");
    d.write("wrangler.toml", &format!("{}\n[build]\ncommand = \"npm run build\"\n", d.read("wrangler.toml")));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(finding(&report, "D002")["severity"], "warning");
    assert!(finding(&report, "D002")["message"].as_str().unwrap().contains("source"));
    assert_eq!(finding(&report, "D007")["severity"], "error");
    assert_eq!(finding(&report, "D007")["line"], Value::Null);
    assert_eq!(finding(&report, "D012")["severity"], "info");
    let d011: Vec<&str> = report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "D011").map(|f| f["message"].as_str().unwrap()).collect();
    assert_eq!(d011.len(), 2, "{d011:?}");
    assert!(d011.iter().any(|m| m.contains("only `lawnquote.online/api/*`")));
    assert!(d011.iter().any(|m| m.starts_with("www.lawnquote.online is in the policy's app.hosts")));

    // Zone routes with a wildcard cover both hosts; a build command that builds the bundle is fine.
    let d = Deploy::quotekit();
    d.edit("wrangler.toml", "  { pattern = \"www.lawnquote.online\", custom_domain = true },\n", "");
    d.edit("wrangler.toml", "  { pattern = \"lawnquote.online\", custom_domain = true },\n", "  { pattern = \"*lawnquote.online/*\", zone_name = \"lawnquote.online\" },\n");
    d.write("wrangler.toml", &format!("{}\n[build]\ncommand = \"npx edgeguard build policy.toml -o edge\"\n", d.read("wrangler.toml")));
    let (code, report) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!ids(&report).contains("D011") && !ids(&report).contains("D012"));
}

#[test]
fn wrangler_environment_is_read_with_env() {
    let d = Deploy::quotekit();
    d.write("wrangler.toml", &format!("{}\n[env.staging]\nroutes = [{{ pattern = \"quotekit-staging.example\", custom_domain = true }}]\n\n[env.staging.vars]\nEDGE_ACTIVE_ORIGIN = \"teal\"\n", d.read("wrangler.toml")));
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0, "top level only without --env: {report:#}");
    let (code, report) = d.doctor(&["--env", "staging"]);
    assert_eq!(code, 1);
    assert!(finding(&report, "D008")["message"].as_str().unwrap().contains("teal"));
    // The staging overlay's host is quotekit-staging.fly.dev: not routed by [env.staging].
    assert!(finding(&report, "D011")["message"].as_str().unwrap().contains("quotekit-staging.fly.dev"));
}

#[test]
fn cloudflare_scope_needs_its_binding() {
    let d = Deploy::quotekit();
    d.write(
        "policy.toml",
        r#"version = 1
[app]
name = "demo"
hosts = ["lawnquote.online"]
[defaults]
limit = "api"
[limits.api]
rate = "100/1m"
scope = "cloudflare"
[limits.burst-guard]
rate = "10/10s"
scope = "cloudflare"
[origins.blue]
url = "https://quotekit-blue.fly.dev"
[deploy]
active = "blue"
"#,
    );
    d.write("wrangler.toml", "name = \"x\"\nmain = \"edge/index.mjs\"\ncompatibility_date = \"2025-09-01\"\nroutes = [\"lawnquote.online/*\"]\n\n[[ratelimits]]\nname = \"EDGEGUARD_RL_API\"\nnamespace_id = \"1001\"\nsimple = { limit = 100, period = 10 }\n");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "D018");
    assert!(f["message"].as_str().unwrap().contains("EDGEGUARD_RL_BURST_GUARD"));
    assert!(f["fix"].as_str().unwrap().contains("limit = 10, period = 10"));
    assert!(finding(&report, "D019")["message"].as_str().unwrap().contains("100 per 10 s"));
}

#[test]
fn syntax_errors_in_deployment_files() {
    let d = Deploy::quotekit();
    d.write("wrangler.toml", "name = \"x\"\n[vars\n");
    d.write("fly.toml", "app = \"quotekit-blue\"\n\n[http_service\n");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&report, "D001")["line"], 2);
    assert_eq!(finding(&report, "D020")["line"], 3);
}

// ------------------------------------------------------------------------------- more fly.toml

#[test]
fn fly_service_port_stop_and_app_name() {
    let d = Deploy::quotekit();
    d.edit("fly.toml", "  min_machines_running = 1\n", "  min_machines_running = 0\n");
    d.edit("fly.toml", "app = \"quotekit-blue\"", "app = \"quotekit-prelaunch-test\"");
    d.edit("fly.toml", "PORT = \"3000\"", "PORT = \"8080\"");
    d.edit("fly.toml", "    timeout = \"5s\"", "    timeout = \"1s\"");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 0, "warnings only: {report:#}");
    for id in ["D029", "D032", "D033", "D036"] {
        assert_eq!(finding(&report, id)["severity"], "warning", "{id}");
    }
    assert!(finding(&report, "D033")["message"].as_str().unwrap().contains("https://quotekit-prelaunch-test.fly.dev"));
    assert!(!ids(&report).contains("D030"));
    let (code, _) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 1);

    // EDGE_ORIGINS pointing an origin at the app counts as the app being an origin.
    d.edit("wrangler.toml", "EDGE_ORIGINS = \"\"", "EDGE_ORIGINS = \"blue=https://quotekit-prelaunch-test.fly.dev\"");
    let (_, report) = d.doctor(&[]);
    assert!(!ids(&report).contains("D033"), "{report:#}");

    let d = Deploy::quotekit();
    d.write("fly.toml", "app = \"quotekit-blue\"\n\n[[vm]]\n  memory = \"1gb\"\n");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&report, "D021")["severity"], "error");
    assert_eq!(finding(&report, "D035")["severity"], "warning");

    // Machine checks ([checks.name]) and legacy [[services]] are read too.
    let d = Deploy::quotekit();
    d.write(
        "fly.toml",
        "app = \"quotekit-blue\"\n\n[[services]]\n  internal_port = 3000\n  protocol = \"tcp\"\n\n[checks.health]\n  type = \"http\"\n  port = 3000\n  path = \"/api/debug-prices\"\n  interval = \"15s\"\n  timeout = \"2s\"\n",
    );
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1);
    assert!(finding(&report, "D023")["message"].as_str().unwrap().contains("[checks.health]"));
    assert_eq!(finding(&report, "D028")["severity"], "info");
    assert!(!ids(&report).contains("D021"));
}

#[test]
fn fly_checks_written_as_a_single_table() {
    // The roadmap's fly.toml: `[http_service.checks]`, one table, which flyctl reads as a list
    // of one. Same findings as the `[[http_service.checks]]` fixture, no false D035.
    let single = "  [http_service.checks]\n    grace_period = \"10s\"\n    interval = \"30s\"\n    method = \"GET\"\n    path = \"/api/health\"\n    timeout = \"5s\"\n";
    let d = Deploy::quotekit();
    d.edit("fly.toml", "  [[http_service.checks]]\n    grace_period = \"10s\"\n    interval = \"15s\"\n    method = \"GET\"\n    timeout = \"5s\"\n    path = \"/api/health\"\n", single);
    let (code, report) = d.doctor(&["--deny-warnings"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(ids(&report), BTreeSet::from(["D013".to_owned(), "D022".to_owned(), "D030".to_owned()]), "{report:#}");
    // D023–D030 read it: its path blocked at the edge is found, at its line.
    d.edit("policy.toml", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"none\"", "path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nblock = 404");
    let (code, report) = d.doctor(&[]);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "D023");
    assert!(f["message"].as_str().unwrap().starts_with("[http_service.checks] path `/api/health`"), "{f}");
    assert_eq!(f["line"], line_of(&d.read("fly.toml"), "path = \"/api/health\""));

    // `[services.http_checks]` in a `[[services]]` entry, and a single `[services]` table.
    for services in ["[[services]]", "[services]"] {
        let d = Deploy::quotekit();
        d.write(
            "fly.toml",
            &format!("app = \"quotekit-blue\"\n\n{services}\n  internal_port = 3000\n\n  [services.http_checks]\n    path = \"/api/debug-prices\"\n    timeout = \"2s\"\n"),
        );
        let (code, report) = d.doctor(&[]);
        assert_eq!(code, 1, "{services}: {report:#}");
        assert!(finding(&report, "D023")["message"].as_str().unwrap().starts_with("[services.http_checks] path"), "{services}: {report:#}");
        assert!(!ids(&report).contains("D021") && !ids(&report).contains("D035"), "{services}: {report:#}");
    }
}

// ------------------------------------------------------------------------------------- usage

#[test]
fn usage_errors_and_policy_errors() {
    let d = Deploy::quotekit();
    edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--fly", "nope.toml"]).assert().code(2).stderr(predicate::str::contains("cannot read `nope.toml`"));
    edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--app", "no-such-app"]).assert().code(2);
    edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--format", "xml"]).assert().code(2);
    edgeguard().current_dir(d.path()).args(["doctor"]).assert().code(2);
    d.write("broken.toml", "version = 2\n");
    edgeguard()
        .current_dir(d.path())
        .args(["doctor", "broken.toml", "--fly", "fly.toml"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("E006").and(predicate::str::contains("fix the policy first")));
    // Only the policy: nothing to compare, nothing found.
    edgeguard().current_dir(d.path()).args(["doctor", "policy.toml"]).assert().code(0).stdout(predicate::str::contains("doctor: 0 errors, 0 warnings, 0 infos"));
}

// --------------------------------------------------------------------------------- app drift

#[test]
fn app_drift_on_the_fixture_app() {
    let d = Deploy::quotekit();
    let app = fixture("nextjs-app");
    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--format", "json", "--app"]).arg(&app).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "drift is a warning");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "D040").collect();
    // 69 route files: 15 have a route of their own, 4 are matched by a blocked rule
    // (/api/debug-*, /api/supabase/functions/**), 50 fall to /api/** or /api/admin/**.
    assert_eq!(drift.len(), 50, "{report:#}");
    assert_eq!(ids(&report), BTreeSet::from(["D040".to_owned()]), "no stale route, no method drift, next ^15.2.3: {report:#}");
    let users = drift.iter().find(|f| f["message"].as_str().unwrap().contains("`/api/admin/users/:id/status`")).unwrap();
    assert!(users["file"].as_str().unwrap().ends_with("app/api/admin/users/[id]/status/route.ts"));
    assert_eq!(users["line"], 3);
    assert!(users["message"].as_str().unwrap().contains("the catch-all `/api/admin/**`"));
    assert!(users["fix"].as_str().unwrap().contains("edgeguard import next"));

    // After an import, the policy knows every route.
    edgeguard().current_dir(d.path()).args(["import", "next"]).arg(&app).args(["--policy", "policy.toml", "--write"]).assert().code(0);
    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--format", "json", "--deny-warnings", "--app"]).arg(&app).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 0, "{report:#}");
}

#[test]
fn app_drift_stale_routes_and_changed_methods() {
    let d = Deploy::quotekit();
    d.write("app/app/api/quotes/route.ts", "export async function GET() {}\nexport async function POST() {}\nexport async function DELETE() {}\n");
    d.write("app/app/api/health/route.ts", "export function GET() {}\nexport function HEAD() {}\n");
    d.write("app/pages/api/legacy.ts", "export default function handler(req, res) { res.end() }\n");
    d.write("app/app/api/empty/route.ts", "export const dynamic = 'force-dynamic';\n");
    d.write(
        "policy.toml",
        r#"version = 1

[[routes]]
path = "/api/quotes"
methods = ["GET", "POST"]

[[routes]]
path = "/api/health"
methods = ["GET", "HEAD"]

[[routes]]
path = "/api/removed"
methods = ["GET"]

[[routes]]
path = "/api/**"
cache = "no-store"

[origins.app]
url = "https://quotekit-blue.fly.dev"

[deploy]
active = "app"
"#,
    );
    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--app", "app", "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let policy = d.read("policy.toml");
    let d042 = finding(&report, "D042");
    assert_eq!(d042["file"], "policy.toml");
    assert_eq!(d042["line"], line_of(&policy, "methods = [\"GET\", \"POST\"]"));
    assert!(d042["message"].as_str().unwrap().contains("exports GET, POST, DELETE"), "{d042}");
    assert!(d042["fix"].as_str().unwrap().contains("methods = [\"GET\", \"POST\", \"DELETE\"]"));
    let d041 = finding(&report, "D041");
    assert_eq!(d041["line"], line_of(&policy, "/api/removed"));
    let d040 = finding(&report, "D040");
    assert!(d040["message"].as_str().unwrap().contains("`/api/legacy` (methods unknown)"), "{d040}");
    let notes: Vec<&str> = report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "D043").map(|f| f["message"].as_str().unwrap()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().any(|m| m.contains("Pages Router")));
    assert!(notes.iter().any(|m| m.contains("exports no HTTP method handler")));
}

// ------------------------------------------------------------------ Next.js and CVE-2025-29927

/// `doctor policy.toml --app app` on a temporary app with `files`: the D047 findings.
fn next_findings(files: &[(&str, &str)]) -> (Deploy, Vec<Value>) {
    let d = Deploy::quotekit();
    d.write("app/app/api/health/route.ts", "export function GET() {}\n");
    for (name, text) in files {
        d.write(&format!("app/{name}"), text);
    }
    let out = edgeguard().current_dir(d.path()).args(["doctor", "policy.toml", "--app", "app", "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == "D047").cloned().collect();
    assert_eq!(out.status.code(), Some(if found.is_empty() { 0 } else { 1 }), "{report:#}");
    (d, found)
}

fn package_json(section: &str, next: &str) -> String {
    format!("{{\n  \"name\": \"quotekit\",\n  \"private\": true,\n  \"{section}\": {{\n    \"react\": \"^19.0.0\",\n    \"next\": \"{next}\"\n  }}\n}}\n")
}

#[test]
fn next_affected_by_the_middleware_bypass() {
    // The range's lowest version is judged when nothing installed says more.
    for (next, affected) in [
        ("^14.2.3", true),
        ("~15.1.0", true),
        ("13.4.0", true),
        ("12.3.4", true),
        ("11.1.4", true),
        (">=15.0.0 <16", true),
        ("14.2.25", false),
        ("^14.2.25", false),
        ("^15.2.3", false),
        ("12.3.5", false),
        ("11.1.3", false),
        ("^16.0.0", false),
        ("latest", false),
    ] {
        let (d, found) = next_findings(&[("package.json", &package_json("dependencies", next))]);
        assert_eq!(found.len(), usize::from(affected), "{next}: {found:?}");
        if let Some(f) = found.first() {
            assert_eq!(f["severity"], "error");
            assert_eq!(f["line"], line_of(&d.read("app/package.json"), "\"next\""));
            assert!(f["file"].as_str().unwrap().ends_with("package.json"));
            let message = f["message"].as_str().unwrap();
            assert!(message.contains(&format!("asks for next \"{next}\" (dependencies)")) && message.contains("lowest version it allows") && message.contains("CVE-2025-29927"), "{message}");
            assert!(f["fix"].as_str().unwrap().starts_with("upgrade next to 12.3.5 / 13.5.9 / 14.2.25 / 15.2.3 or later"), "{f}");
        }
    }
    let (_, found) = next_findings(&[("package.json", &package_json("devDependencies", "14.1.0"))]);
    assert!(found[0]["message"].as_str().unwrap().contains("(devDependencies)"), "{found:?}");

    // What is installed decides over the range: the lock file, then node_modules.
    let lock = |v: &str| format!("{{\n  \"lockfileVersion\": 3,\n  \"packages\": {{\n    \"\": {{ \"name\": \"quotekit\" }},\n    \"node_modules/next\": {{\n      \"version\": \"{v}\"\n    }}\n  }}\n}}\n");
    let range = package_json("dependencies", "^14.2.3");
    let (_, found) = next_findings(&[("package.json", &range), ("package-lock.json", &lock("14.2.30"))]);
    assert!(found.is_empty(), "{found:?}");
    let (d, found) = next_findings(&[("package.json", &package_json("dependencies", "^14.2.25")), ("package-lock.json", &lock("14.2.24"))]);
    let f = &found[0];
    assert!(f["message"].as_str().unwrap().starts_with("next 14.2.24 is installed (package-lock.json) and is affected"), "{f}");
    assert_eq!(f["line"], line_of(&d.read("app/package-lock.json"), "\"version\": \"14.2.24\""));
    let installed = "{\n  \"name\": \"next\",\n  \"version\": \"15.1.7\"\n}\n";
    let (_, found) = next_findings(&[("package.json", &range), ("package-lock.json", &lock("14.2.30")), ("node_modules/next/package.json", installed)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0]["message"].as_str().unwrap().starts_with("next 15.1.7 is installed (node_modules/next/package.json)"), "{found:?}");
    assert_eq!(found[0]["line"], 3);
    // A canary build is judged by its numbers.
    let (_, found) = next_findings(&[("package.json", &range), ("package-lock.json", &lock("15.2.2-canary.7"))]);
    assert_eq!(found.len(), 1, "{found:?}");
}
