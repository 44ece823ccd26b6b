//! The `edgeguard` binary, run as a user runs it: real policy files in a temporary directory,
//! exit codes, stdout and stderr.
//!
//! Exit codes are the contract of every command: 0 success, 1 the policy failed, 2 usage error.

// clippy.toml exempts `#[test]` functions; the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

fn edgeguard() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("edgeguard")
}

/// A temporary directory holding policy files.
struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, name: &str, source: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, source).unwrap();
        path
    }
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("stdout is not one JSON value ({e}):\n{text}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr))
    })
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

/// Valid, with an origin: compiles without errors.
const CLEAN: &str = r#"
version = 1

[app]
name = "demo"

[https]
redirect = true

[origins.app]
url = "https://demo.example.net"

[deploy]
active = "app"
"#;

/// Two errors: an unsupported language version and a misspelled key.
const BROKEN: &str = r#"version = 2

[https]
redirekt = true
"#;

/// No errors, but warnings: no `version` key, and an HSTS max-age over ten years.
const WARNS: &str = r#"
[https]
redirect = true
hsts = { max_age = "20y", include_subdomains = true }

[origins.app]
url = "https://demo.example.net"

[deploy]
active = "app"
"#;

/// Every request is limited by `tight`: two at once, then refused.
const TIGHT: &str = r#"
version = 1

[https]
redirect = false

[defaults]
limit = "tight"

[limits.tight]
rate = "2/1m"
burst = 2
key = "ip"

[origins.app]
url = "https://demo.example.net"

[deploy]
active = "app"
"#;

// ---------------------------------------------------------------- check

#[test]
fn check_clean_policy_exits_0_with_summary() {
    let dir = Dir::new();
    dir.write("policy.toml", CLEAN);
    edgeguard()
        .current_dir(dir.path())
        .args(["check", "policy.toml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("policy.toml: 0 errors"));
}

#[test]
fn check_errors_exit_1_with_rendered_diagnostics() {
    let dir = Dir::new();
    dir.write("bad.toml", BROKEN);
    let out = edgeguard().current_dir(dir.path()).args(["check", "bad.toml"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}");
    assert!(stdout.contains("error[E"), "a code in the header:\n{stdout}");
    assert!(stdout.contains("bad.toml:4:"), "file:line:col of `redirekt`:\n{stdout}");
    assert!(stdout.contains("redirekt"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("bad.toml: ") && !last.starts_with("bad.toml: 0 errors"), "summary line: {last}");
}

#[test]
fn check_missing_file_exits_2() {
    let dir = Dir::new();
    edgeguard()
        .current_dir(dir.path())
        .args(["check", "nope.toml"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("error: cannot read `nope.toml`"));
}

#[test]
fn check_directory_exits_2() {
    let dir = Dir::new();
    edgeguard().arg("check").arg(dir.path()).assert().code(2).stderr(predicate::str::contains("cannot read"));
}

#[test]
fn check_bad_input_is_a_diagnostic_and_exit_1() {
    let dir = Dir::new();
    let latin1 = dir.path().join("latin1.toml");
    std::fs::write(&latin1, b"[app]\nname = \"caf\xe9\"\n").unwrap();
    edgeguard().arg("check").arg(&latin1).assert().code(1).stdout(predicate::str::contains("E007").and(predicate::str::contains("not UTF-8")));
    let garbage = dir.path().join("garbage.toml");
    std::fs::write(&garbage, (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>()).unwrap();
    edgeguard().arg("check").arg(&garbage).assert().code(1);
    let empty = dir.write("empty.toml", "");
    edgeguard().arg("check").arg(&empty).assert().code(1).stdout(predicate::str::contains("E007"));
    let malformed = dir.write("malformed.toml", "version = 1\n[app\nname = \"x\"\n");
    edgeguard().arg("check").arg(&malformed).assert().code(1).stdout(predicate::str::contains("E001").and(predicate::str::contains("malformed.toml:2:")));
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "# padding padding padding padding padding padding padding padding\n".repeat(160_000)).unwrap();
    edgeguard().arg("check").arg(&huge).assert().code(1).stdout(predicate::str::contains("E007"));
}

#[test]
fn fixtures_compile() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    edgeguard().arg("check").arg(root.join("minimal.toml")).arg("--deny-warnings").assert().code(0);
    // QuoteKit's CSP still needs 'unsafe-inline'/'unsafe-eval' and *.googleapis.com, and its
    // metrics key is the docs' demo key: warned, not refused.
    let out = edgeguard().arg("check").arg(root.join("quotekit.toml")).args(["--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: BTreeSet<&str> = json["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, BTreeSet::from(["W010", "W011", "W021", "W062"]));
    edgeguard().arg("check").arg(root.join("quotekit.toml")).args(["--env", "staging"]).assert().code(0);
    edgeguard().arg("check").arg(root.join("helmet.toml")).assert().code(0);
}

#[test]
fn check_bad_flag_exits_2() {
    let dir = Dir::new();
    let path = dir.write("policy.toml", CLEAN);
    edgeguard().arg("check").arg(&path).arg("--no-such-flag").assert().code(2);
    edgeguard().arg("check").arg(&path).args(["--format", "xml"]).assert().code(2);
    edgeguard().arg("check").assert().code(2);
}

#[test]
fn check_json_shape() {
    let dir = Dir::new();
    dir.write("bad.toml", BROKEN);
    let out = edgeguard().current_dir(dir.path()).args(["check", "bad.toml", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_json(&out);
    let expected: BTreeSet<String> = ["file", "ok", "errors", "warnings", "diagnostics"].map(String::from).into();
    assert_eq!(keys(&v), expected);
    assert_eq!(v["file"], "bad.toml");
    assert_eq!(v["ok"], false);
    assert!(v["errors"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["warnings"].is_u64());
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len() as u64, v["errors"].as_u64().unwrap() + v["warnings"].as_u64().unwrap());
    let located: BTreeSet<String> =
        ["file", "line", "column", "end_line", "end_column", "severity", "code", "message", "help", "related"]
            .map(String::from)
            .into();
    for d in diags {
        assert_eq!(keys(d), located, "{d}");
        assert_eq!(d["file"], "bad.toml");
        assert!(d["line"].as_u64().unwrap() >= 1);
        assert!(d["column"].as_u64().unwrap() >= 1);
        assert!(matches!(d["severity"].as_str(), Some("error" | "warning")));
        assert!(d["code"].as_str().unwrap().starts_with(['E', 'W']));
    }
    assert!(diags.iter().any(|d| d["line"] == 4 && d["severity"] == "error"), "`redirekt` on line 4: {v}");

    // A clean policy: ok, an empty list, still one object.
    dir.write("clean.toml", CLEAN);
    let out = edgeguard().current_dir(dir.path()).args(["check", "clean.toml", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = stdout_json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"], 0);
}

#[test]
fn check_github_annotations_are_escaped() {
    let dir = Dir::new();
    // `,` and `:` in a property value must be escaped as %2C and %3A.
    dir.write("a,b:c.toml", BROKEN);
    let out = edgeguard().current_dir(dir.path()).args(["check", "a,b:c.toml", "--format", "github"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "one workflow command per diagnostic");
    for line in &lines {
        assert!(
            line.starts_with("::error file=a%2Cb%3Ac.toml,line=") || line.starts_with("::warning file=a%2Cb%3Ac.toml,line="),
            "{line}"
        );
        let (props, message) = line.trim_start_matches("::").split_once("::").unwrap();
        let props: Vec<&str> = props.split_once(' ').unwrap().1.split(',').collect();
        let names: Vec<&str> = props.iter().map(|p| p.split_once('=').unwrap().0).collect();
        assert_eq!(names, ["file", "line", "col", "endLine", "endColumn", "title"], "{line}");
        assert!(props[5].trim_start_matches("title=").starts_with(['E', 'W']), "{line}");
        assert!(!message.is_empty());
        assert!(!message.contains('\r'));
    }
    assert!(lines.iter().any(|l| l.starts_with("::error ") && l.contains(",line=4,")), "{stdout}");
    // The summary is not a workflow command: it goes to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("a,b:c.toml: "));
}

#[test]
fn check_deny_warnings() {
    let dir = Dir::new();
    dir.write("warns.toml", WARNS);
    let out = edgeguard().current_dir(dir.path()).args(["check", "warns.toml", "--format", "json"]).output().unwrap();
    let v = stdout_json(&out);
    assert_eq!(v["errors"], 0, "this policy must have no errors: {v}");
    assert!(v["warnings"].as_u64().unwrap() >= 1, "this policy must have warnings: {v}");
    assert_eq!(out.status.code(), Some(0), "warnings alone pass");
    assert_eq!(v["ok"], true);

    let out = edgeguard()
        .current_dir(dir.path())
        .args(["check", "warns.toml", "--format", "json", "--deny-warnings"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "--deny-warnings fails on warnings");
    assert_eq!(stdout_json(&out)["ok"], false);

    edgeguard()
        .current_dir(dir.path())
        .args(["check", "warns.toml", "--deny-warnings"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("warning[W").and(predicate::str::contains("(denied by --deny-warnings)")));
}

// ---------------------------------------------------------------- compile

#[test]
fn compile_writes_a_loadable_byte_identical_bundle() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    let first = dir.path().join("one.bundle");
    let second = dir.path().join("two.bundle");
    for out in [&first, &second] {
        edgeguard()
            .arg("compile")
            .arg(&policy)
            .arg("-o")
            .arg(out)
            .assert()
            .code(0)
            .stdout(predicate::str::is_match(r"^wrote .*\.bundle \(\d+ bytes, revision [0-9a-f]{12}…\)\n$").unwrap());
    }
    let a = std::fs::read(&first).unwrap();
    let b = std::fs::read(&second).unwrap();
    assert_eq!(a, b, "the same policy compiles to the same bytes");
    let bundle = edgeguard_core::Bundle::from_bytes(&a).unwrap();
    assert!(bundle.https.redirect);
    edgeguard_core::Engine::load(&a).unwrap();
    // No temporary files are left next to the bundle.
    let names: BTreeSet<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["one.bundle", "policy.toml", "two.bundle"].map(String::from).into());
}

#[test]
fn compile_writes_nothing_when_the_policy_fails() {
    let dir = Dir::new();
    let broken = dir.write("bad.toml", BROKEN);
    let out = dir.path().join("bad.bundle");
    edgeguard()
        .arg("compile")
        .arg(&broken)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("error[E"));
    assert!(!out.exists());

    let warns = dir.write("warns.toml", WARNS);
    edgeguard()
        .arg("compile")
        .arg(&warns)
        .arg("-o")
        .arg(&out)
        .arg("--deny-warnings")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("warning[W"));
    assert!(!out.exists());
}

#[test]
fn compile_replaces_its_output_and_keeps_it_when_the_policy_fails() {
    // A build tool's output: `compile -o` replaces an existing file (init is what refuses).
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    let out = dir.write("policy.bundle", "an older bundle");
    edgeguard().arg("compile").arg(&policy).arg("-o").arg(&out).assert().code(0).stdout(predicate::str::starts_with("wrote "));
    let bytes = std::fs::read(&out).unwrap();
    edgeguard_core::Bundle::from_bytes(&bytes).unwrap();
    // A policy that fails leaves the existing bundle as it was.
    let broken = dir.write("bad.toml", BROKEN);
    edgeguard().arg("compile").arg(&broken).arg("-o").arg(&out).assert().code(1);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn compile_usage_errors_exit_2() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    edgeguard().arg("compile").arg(&policy).assert().code(2).stderr(predicate::str::contains("--output"));
    edgeguard().arg("compile").arg(dir.path().join("missing.toml")).args(["-o", "x.bundle"]).assert().code(2);
}

// ---------------------------------------------------------------- explain

/// The keys of the `explain` contract (docs/explain.md).
const CONTRACT_KEYS: [&str; 11] = [
    "action",
    "status",
    "reason",
    "route",
    "origin",
    "location",
    "response_headers",
    "remove_headers",
    "forward_headers",
    "rate_limit",
    "detail",
];
/// Extensions beyond the contract that the CLI prints today. A new key must be added here (and
/// documented) on purpose.
const EXTRA_KEYS: [&str; 11] = ["path", "problem", "shadow_refused", "lane", "csp_nonce", "strip_request_headers", "cache", "on_origin_failure", "session", "slo", "client"];

fn explain(policy: &Path, args: &[&str]) -> Output {
    edgeguard().arg("explain").arg(policy).args(args).output().unwrap()
}

fn explain_json(policy: &Path, args: &[&str]) -> Value {
    let out = explain(policy, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "explain exits 0 whatever the decision; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)
}

#[test]
fn explain_https_redirect() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", "version = 1\n[https]\nredirect = true\n[origins.app]\nurl = \"https://demo.example.net\"\n");
    let v = explain_json(&policy, &["--request", "GET http://example.com/"]);
    assert_eq!(v["action"], "redirect");
    assert_eq!(v["status"], 301);
    assert_eq!(v["reason"], "https_redirect");
    assert_eq!(v["location"], "https://example.com/");
    assert_eq!(v["response_headers"]["location"], "https://example.com/");
    assert_eq!(v["origin"], Value::Null);
    assert_eq!(v["forward_headers"], serde_json::json!({}));

    // Other methods keep theirs: 308.
    let v = explain_json(&policy, &["--request", "POST http://example.com/form?x=1"]);
    assert_eq!(v["status"], 308);
    assert_eq!(v["location"], "https://example.com/form?x=1");
}

#[test]
fn explain_json_has_the_contract_keys() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    let v = explain_json(&policy, &["--request", "GET https://example.com/hello?a=b", "--client-ip", "203.0.113.7"]);
    let expected: BTreeSet<String> = CONTRACT_KEYS.iter().chain(EXTRA_KEYS.iter()).map(|k| (*k).to_owned()).collect();
    assert_eq!(keys(&v), expected);
    assert_eq!(v["action"], "forward");
    assert_eq!(v["status"], Value::Null);
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["origin"], "app");
    assert_eq!(v["location"], Value::Null);
    assert_eq!(v["rate_limit"], Value::Null);
    assert!(v["response_headers"].is_object());
    assert!(v["remove_headers"].is_array());
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
    for (name, _) in v["response_headers"].as_object().unwrap() {
        assert_eq!(name, &name.to_ascii_lowercase(), "header names are lowercase");
    }
    let fwd = &v["forward_headers"];
    assert_eq!(fwd["x-forwarded-for"], "203.0.113.7");
    assert_eq!(fwd["x-forwarded-proto"], "https");
    assert_eq!(fwd["x-forwarded-host"], "example.com");
    let id = fwd["x-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "a random u128 in hex: {id}");
    assert_eq!(v["response_headers"]["x-request-id"], id);
}

#[test]
fn explain_draws_a_new_request_id_each_run() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    let args = ["--request", "GET https://example.com/"];
    let a = explain_json(&policy, &args);
    let b = explain_json(&policy, &args);
    assert_ne!(a["forward_headers"]["x-request-id"], b["forward_headers"]["x-request-id"]);
}

#[test]
fn explain_repeat_reaches_429() {
    let dir = Dir::new();
    let policy = dir.write("tight.toml", TIGHT);
    let req = ["--request", "GET https://example.com/", "--client-ip", "198.51.100.4"];

    let v = explain_json(&policy, &req);
    assert_eq!(v["action"], "forward");
    assert_eq!(v["rate_limit"]["name"], "tight");
    assert_eq!(v["rate_limit"]["limit"], 2);
    assert_eq!(v["rate_limit"]["remaining"], 1);

    let v = explain_json(&policy, &[&req[..], &["--repeat", "2"]].concat());
    assert_eq!(v["action"], "forward", "the burst allows two at once");
    assert_eq!(v["rate_limit"]["remaining"], 0);

    let v = explain_json(&policy, &[&req[..], &["--repeat", "3", "--at", "3600"]].concat());
    assert_eq!(v["action"], "reject");
    assert_eq!(v["status"], 429);
    assert_eq!(v["reason"], "rate_limited");
    assert_eq!(v["origin"], Value::Null);
    assert_eq!(v["rate_limit"]["name"], "tight");
    assert_eq!(v["rate_limit"]["remaining"], 0);
    assert!(v["rate_limit"]["reset"].as_u64().unwrap() > 0);
    let headers = &v["response_headers"];
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers["retry-after"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(headers["ratelimit"].as_str().unwrap().contains("r=0"), "{headers}");
    assert_eq!(v["problem"]["status"], 429);
    assert!(v["problem"]["type"].as_str().unwrap().ends_with("quota-exceeded"));
}

#[test]
fn explain_client_ip_goes_into_the_trusted_header() {
    let dir = Dir::new();
    let policy = dir.write(
        "policy.toml",
        &format!("{CLEAN}\n[client_ip]\nfrom = \"cf-connecting-ip\"\n"),
    );
    // A client-sent value of the trusted header is replaced by --client-ip.
    let v = explain_json(
        &policy,
        &["--request", "GET https://example.com/", "-H", "CF-Connecting-IP: 192.0.2.1", "--client-ip", "2001:db8::7"],
    );
    assert_eq!(v["forward_headers"]["x-forwarded-for"], "2001:db8::7");
    assert!(v["forward_headers"]["forwarded"].as_str().unwrap().starts_with("for=\"[2001:db8::7]\""));

    // Without --client-ip, the header sent with -H is what the edge trusts.
    let v = explain_json(&policy, &["--request", "GET https://example.com/", "-H", "cf-connecting-ip: 192.0.2.1"]);
    assert_eq!(v["forward_headers"]["x-forwarded-for"], "192.0.2.1");
}

#[test]
fn explain_env_selects_the_environment() {
    let dir = Dir::new();
    let policy = dir.write(
        "policy.toml",
        &format!(
            "{CLEAN}\n[[routes]]\npath = \"/api/debug-*\"\nblock = 404\nonly_in = [\"production\"]\n"
        ),
    );
    let req = ["--request", "GET https://example.com/api/debug-prices"];
    let v = explain_json(&policy, &[&req[..], &["--env", "production"]].concat());
    assert_eq!(v["action"], "reject");
    assert_eq!(v["status"], 404);
    assert_eq!(v["reason"], "blocked");
    assert_eq!(v["route"], "/api/debug-*");
    let v = explain_json(&policy, &[&req[..], &["--env", "staging"]].concat());
    assert_eq!(v["action"], "forward");
}

#[test]
fn explain_text_format() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    let out = explain(&policy, &["--request", "GET http://example.com/x", "--format", "text"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "action      redirect",
        "status      301",
        "reason      https_redirect",
        "route       - (decided before routing)",
        "location    https://example.com/x",
        "response headers:",
    ] {
        assert!(text.contains(needle), "`{needle}` in:\n{text}");
    }

    let policy = dir.write("tight.toml", TIGHT);
    let out = explain(&policy, &["--request", "GET https://example.com/", "--repeat", "3", "--format", "text"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "status      429",
        "rate_limited",
        "route       - (no route matched: [defaults])",
        "rate limit  `tight`: 0 of 2 remaining",
        "problem body",
        "quota-exceeded",
    ] {
        assert!(text.contains(needle), "`{needle}` in:\n{text}");
    }
}

#[test]
fn explain_policy_errors_exit_1() {
    let dir = Dir::new();
    let policy = dir.write("bad.toml", BROKEN);
    let out = explain(&policy, &["--request", "GET https://example.com/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[E"));
}

#[test]
fn explain_usage_errors_exit_2() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", CLEAN);
    for args in [
        &["--request", "GET /no-host"][..],
        &["--request", "GET"],
        &["--request", "GET example.com/"],
        &["--request", "GET https://example.com/", "-H", "no colon"],
        &["--request", "GET https://example.com/", "--client-ip", "not-an-ip"],
        &["--request", "GET https://example.com/", "--repeat", "0"],
        &["--request", "GET https://example.com/", "--format", "yaml"],
        &["--request", "GET https://example.com/", "--at", "99999999999999999999"],
        &[],
    ] {
        let out = explain(&policy, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // An origin-form target with a Host header is fine.
    let out = explain(&policy, &["--request", "GET /x", "-H", "Host: example.com"]);
    assert_ne!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------- init, schema, global

#[test]
fn init_presets_compile() {
    for preset in ["helmet", "nextjs-fly"] {
        let dir = Dir::new();
        let out = edgeguard().args(["init", "--preset", preset]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let source = String::from_utf8(out.stdout).unwrap();
        assert!(source.starts_with("# edgeguard policy"), "{preset}: commented starter");
        let path = dir.write("policy.toml", &source);
        let out = edgeguard().arg("check").arg(&path).args(["--format", "json"]).output().unwrap();
        let v = stdout_json(&out);
        assert_eq!(v["errors"], 0, "{preset} starter must compile: {v}");
        assert_eq!(out.status.code(), Some(0));
        // Its staging overlay does not forward the production-only routes to production (W031).
        let out = edgeguard().arg("check").arg(&path).args(["--env", "staging", "--format", "json"]).output().unwrap();
        let v = stdout_json(&out);
        assert_eq!(v["errors"], 0, "{preset} starter in staging: {v}");
        assert!(v["diagnostics"].as_array().unwrap().iter().all(|d| d["code"] != "W031"), "{preset}: {v}");
        let bundle = dir.path().join("policy.bundle");
        edgeguard().arg("compile").arg(&path).arg("-o").arg(&bundle).assert().code(0);
        edgeguard_core::Engine::load(&std::fs::read(&bundle).unwrap()).unwrap();
    }
}

#[test]
fn init_nextjs_fly_starter_behaves() {
    let dir = Dir::new();
    let path = dir.path().join("policy.toml");
    edgeguard().args(["init", "--preset", "nextjs-fly", "-o"]).arg(&path).assert().code(0);
    let ok = |url: &str| explain_json(&path, &["--request", url, "--client-ip", "203.0.113.7"]);

    let v = ok("GET http://example.com/");
    assert_eq!(v["reason"], "https_redirect");
    let v = ok("GET https://www.example.com/pricing");
    assert_eq!(v["reason"], "canonical_host");
    assert_eq!(v["location"], "https://example.com/pricing");
    let v = ok("GET https://evil.example/");
    assert_eq!(v["status"], 421);
    let v = ok("GET https://example.com/_next/static/chunks/main-abc.js");
    assert_eq!(v["action"], "forward");
    assert_eq!(v["rate_limit"], Value::Null);
    assert_eq!(v["response_headers"]["cache-control"], "public, max-age=31536000, immutable");
    let v = ok("GET https://example.com/api/debug-prices");
    assert_eq!(v["status"], 404);
    assert_eq!(v["reason"], "blocked");
    let v = ok("POST https://example.com/api/webhooks/stripe");
    assert_eq!(v["reason"], "missing_header");
    let v = ok("GET https://example.com/__edge/health");
    assert_eq!(v["action"], "respond");
    let v = ok("GET https://example.com/dashboard");
    assert_eq!(v["origin"], "blue");
    assert_eq!(v["rate_limit"]["name"], "api");
    let csp = v["response_headers"]["content-security-policy-report-only"].as_str().unwrap_or_default();
    for directive in ["object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "`{directive}` in {csp}");
    }
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = Dir::new();
    let path = dir.write("policy.toml", "# mine\n");
    edgeguard()
        .args(["init", "--preset", "helmet", "-o"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists").and(predicate::str::contains("--force")));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

    edgeguard().args(["init", "--preset", "helmet", "--force", "-o"]).arg(&path).assert().code(0);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("preset = \"helmet\""));

    let fresh = dir.path().join("new.toml");
    edgeguard().args(["init", "--preset", "nextjs-fly", "--output"]).arg(&fresh).assert().code(0);
    assert!(std::fs::read_to_string(&fresh).unwrap().contains("[origins.green]"));
}

#[test]
fn init_from_headers_keeps_the_sites_choices_and_compiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/headers");
    for (file, kept, not_kept) in [
        // QuoteKit's headers: its CSP directive by directive, its DENY, referrer and reports.
        ("quotekit.txt", &["\"X-Frame-Options\" = \"DENY\"", "script-src = [\"'self'\", \"'unsafe-inline'\"", "report_to = \"/__edge/csp-report\""][..], &["report-uri"][..]),
        // helmet's own headers: nothing to keep beyond the preset, HSTS as sent.
        ("helmet.txt", &["preset = \"helmet\"", "hsts = { max_age = 31536000, include_subdomains = true, preload = false }"][..], &["[headers.set]"][..]),
        // No security headers at all: helmet's, and a year of HSTS.
        ("bare.txt", &["preset = \"helmet\"", "hsts = { max_age = \"1y\", include_subdomains = true }"][..], &["[csp]", "[headers.set]"][..]),
    ] {
        let dir = Dir::new();
        let path = dir.path().join("policy.toml");
        let out = edgeguard().args(["init", "--from-headers"]).arg(root.join(file)).arg("-o").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let notes = String::from_utf8(out.stderr).unwrap();
        assert!(notes.lines().all(|l| l.starts_with("kept: ") || l.starts_with("changed: ")), "{file}: {notes}");
        let source = std::fs::read_to_string(&path).unwrap();
        for want in kept {
            assert!(source.contains(want), "{file}: `{want}` in\n{source}");
        }
        for unwanted in not_kept {
            assert!(!source.contains(unwanted), "{file}: no `{unwanted}` in\n{source}");
        }
        let v = stdout_json(&edgeguard().arg("check").arg(&path).args(["--format", "json"]).output().unwrap());
        assert_eq!(v["errors"], 0, "{file}: {v}");
    }
    // Not headers: exit 2, saying what is wrong.
    let dir = Dir::new();
    let html = dir.write("page.html", "<!doctype html><p>hi</p>\n");
    edgeguard().args(["init", "--from-headers"]).arg(&html).assert().code(2).stderr(predicate::str::contains("no response headers found"));
    edgeguard().args(["init", "--from-headers", "/nonexistent/headers.txt"]).assert().code(2);
}

#[test]
fn init_usage_errors_exit_2() {
    edgeguard().args(["init"]).assert().code(2);
    edgeguard().args(["init", "--preset", "rails"]).assert().code(2);
    edgeguard().args(["init", "--preset", "helmet", "--force"]).assert().code(2);
}

#[test]
fn schema_is_json_schema() {
    let out = edgeguard().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = stdout_json(&out);
    assert_eq!(v["title"], "edgeguard policy");
    assert!(v["properties"]["https"].is_object());
    assert!(String::from_utf8(out.stdout).unwrap().contains("\n  \""), "pretty-printed");
}

#[test]
fn version_and_help() {
    edgeguard()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(format!("edgeguard {}", env!("CARGO_PKG_VERSION"))));
    for command in ["check", "compile", "explain", "schema", "init"] {
        edgeguard()
            .args([command, "--help"])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("Examples:").and(predicate::str::contains("Usage: edgeguard")));
    }
    edgeguard().assert().code(2);
    edgeguard().arg("frobnicate").assert().code(2);
}

#[test]
fn explain_shows_the_strict_csp_of_an_html_page() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", &format!("{CLEAN}\n[csp]\nstrict = \"nonce\"\nmode = \"report-only\"\n"));
    let v = explain_json(&policy, &["--request", "GET https://example.com/"]);
    let helmet = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";
    let strict = helmet.replace("script-src 'self'", "script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:");
    assert_eq!(v["response_headers"]["content-security-policy"], helmet, "report-only: the legacy policy is enforced");
    assert_eq!(v["response_headers"]["content-security-policy-report-only"], strict.as_str());
    assert_eq!(
        v["csp_nonce"],
        serde_json::json!({
            "mode": "report-only",
            "header": "content-security-policy-report-only",
            "value": strict,
            "applies_to": "text/html responses",
            "otherwise": helmet,
        })
    );
    let out = explain(&policy, &["--request", "GET https://example.com/", "--format", "text"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nstrict CSP (report-only: a fresh nonce per response on text/html responses"), "{text}");
    assert!(text.contains(&format!("  content-security-policy-report-only: {strict}\n")), "{text}");
    assert!(text.contains(&format!("  other responses: content-security-policy: {helmet}\n")), "{text}");
    // The edge's own answers are not HTML.
    let v = explain_json(&policy, &["--request", "GET http://example.com/"]);
    assert_eq!(v["csp_nonce"], Value::Null);
    assert_eq!(v["response_headers"]["content-security-policy"], helmet);
}

#[test]
fn explain_takes_request_cf_and_reports_the_client() {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quotekit.toml");
    let v = explain_json(&policy, &["--request", "GET https://lawnquote.online/pricing", "--country", "ir", "--continent", "AS", "--asn", "197207"]);
    assert_eq!((v["status"].as_u64(), v["reason"].as_str()), (Some(403), Some("geo_denied")), "{v}");
    assert_eq!(v["problem"]["type"], "https://edgeguard.dev/problems/geo-denied");
    assert_eq!((v["client"]["country"].as_str(), v["client"]["continent"].as_str(), v["client"]["asn"].as_u64()), (Some("IR"), Some("AS"), Some(197207)));
    let ua = "User-Agent: Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let v = explain_json(&policy, &["--request", "GET https://lawnquote.online/api/quotes", "-H", ua, "--verified-bot-category", "Search Engine Crawler"]);
    assert_eq!(v["reason"], "bot_denied");
    assert_eq!(v["client"]["bot"], serde_json::json!({"category": "search_engine", "verified": true, "claimed": null, "name": "Googlebot"}));
    // The raw user agent is never in the answer; the list entry's name is.
    assert!(!v.to_string().contains("google.com/bot.html"), "{v}");
    let v = explain_json(&policy, &["--request", "GET https://lawnquote.online/.env", "--repeat", "5"]);
    assert_eq!(v["reason"], "shield_blocked");
    assert_eq!(v["client"]["suspicion"]["score"], 5);
    assert_eq!(v["client"]["suspicion"]["matched"], serde_json::json!({"kind": "secrets", "signature": ".env", "in": "path"}));
    assert_eq!(v["response_headers"]["retry-after"], "900");
}
