//! `edgeguard doctor --catalog`: QuoteKit's environment catalog (fixtures/quotekit.env.toml)
//! against its deployment inputs, and broken variants of them written to temporary files: one
//! test per check (D050–D061), the catalog's own diagnostics, and no secret value in any output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
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

fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not found");
    text.replacen(from, to, 1)
}

/// QuoteKit's inputs in a temporary directory, each replaceable.
struct Env {
    dir: TempDir,
}

impl Env {
    fn quotekit() -> Env {
        let e = Env { dir: tempfile::tempdir().unwrap() };
        for (name, rel) in [
            ("policy.toml", "quotekit.toml"),
            ("env.toml", "quotekit.env.toml"),
            ("fly.toml", "deploy/fly.toml"),
            ("fly.staging.toml", "deploy/fly.staging.toml"),
            ("wrangler.toml", "deploy/wrangler.toml"),
            ("prod.secrets.json", "env/production.fly-secrets.json"),
            ("staging.secrets.json", "env/staging.fly-secrets.json"),
            ("wrangler-secrets.json", "env/production.wrangler-secrets.json"),
        ] {
            e.write(name, &read_fixture(rel));
        }
        e
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    fn p(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// doctor with every QuoteKit input, plus `extra`, as JSON.
    fn doctor(&self, extra: &[&str]) -> (i32, Value) {
        let mut cmd = edgeguard();
        cmd.args(["doctor", &self.p("policy.toml"), "--catalog", &self.p("env.toml"), "--fly", &self.p("fly.toml"), "--wrangler", &self.p("wrangler.toml")]);
        cmd.args(["--fly-secrets", &self.p("prod.secrets.json"), "--fly-env", &format!("staging={}", self.p("fly.staging.toml"))]);
        cmd.args(["--fly-secrets", &format!("staging={}", self.p("staging.secrets.json")), "--wrangler-secrets", &self.p("wrangler-secrets.json")]);
        cmd.args(extra).args(["--format", "json"]);
        let out = cmd.output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), json)
    }
}

/// The findings with an id in the D050–D061 range.
fn env_findings(report: &Value) -> Vec<Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["id"].as_str().unwrap() >= "D050" && f["id"].as_str().unwrap() <= "D061").cloned().collect()
}

fn only(report: &Value, id: &str) -> Vec<Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["id"] == id).cloned().collect()
}

#[test]
fn quotekit_fixtures_pass() {
    let e = Env::quotekit();
    let (code, report) = e.doctor(&["--deny-warnings"]);
    assert_eq!(code, 0, "{report}");
    assert!(env_findings(&report).is_empty(), "{report}");
    let checked: Vec<&str> = report["checked"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(checked.iter().any(|c| c.ends_with("env.toml")), "{checked:?}");
    assert!(checked.iter().any(|c| c.ends_with("staging.secrets.json")), "{checked:?}");
}

#[test]
fn missing_secret_names_the_catalog_line() {
    let e = Env::quotekit();
    let staging = e.read("staging.secrets.json");
    let v: Value = serde_json::from_str(&staging).unwrap();
    let without: Vec<Value> = v.as_array().unwrap().iter().filter(|s| s["Name"] != "STRIPE_WEBHOOK_SECRET").cloned().collect();
    e.write("staging.secrets.json", &serde_json::to_string(&without).unwrap());
    let (code, report) = e.doctor(&[]);
    assert_eq!(code, 1);
    let f = only(&report, "D050");
    assert_eq!(f.len(), 1, "{report}");
    assert_eq!(f[0]["severity"], "error");
    assert!(f[0]["file"].as_str().unwrap().ends_with("staging.secrets.json"));
    assert_eq!(f[0]["line"], Value::Null);
    let line = read_fixture("quotekit.env.toml").lines().position(|l| l == "[vars.STRIPE_WEBHOOK_SECRET]").unwrap() + 1;
    assert!(f[0]["message"].as_str().unwrap().contains(&format!("STRIPE_WEBHOOK_SECRET is missing from fly secrets for staging ({}:{line}", e.p("env.toml"))), "{}", f[0]);
    assert!(f[0]["fix"].as_str().unwrap().contains("fly secrets set STRIPE_WEBHOOK_SECRET="));
    // Missing from staging only: no parity finding on top (production has it, the catalog wants it in both).
    assert!(only(&report, "D056").is_empty(), "{report}");
}

#[test]
fn unexpected_names() {
    let e = Env::quotekit();
    let prod = edit(&e.read("prod.secrets.json"), "[", "[{\"Name\":\"LEGACY_TOKEN\",\"Digest\":\"aa\"},");
    e.write("prod.secrets.json", &prod);
    // A catalog entry in the wrong place: an [env] var set as a secret.
    let staging = edit(&e.read("staging.secrets.json"), "[", "[{\"Name\":\"NODE_ENV\",\"Digest\":\"bb\"},");
    e.write("staging.secrets.json", &staging);
    // A variable the catalog keeps out of production.
    let catalog = edit(&e.read("env.toml"), "[vars.FORMBRICKS_DEBUG]\n", "[vars.FORMBRICKS_DEBUG]\nenvironments = [\"staging\"]\n");
    e.write("env.toml", &catalog);
    let fly = edit(&e.read("fly.toml"), "  PORT = \"3000\"\n", "  PORT = \"3000\"\n  FORMBRICKS_DEBUG = \"false\"\n");
    e.write("fly.toml", &fly);
    let (code, report) = e.doctor(&["--deny-warnings"]);
    assert_eq!(code, 1);
    let msgs: Vec<String> = only(&report, "D051").iter().map(|f| f["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs[0].starts_with("FORMBRICKS_DEBUG is set for production, but the catalog"), "{msgs:?}");
    assert!(msgs[0].ends_with("has it only in staging"), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("LEGACY_TOKEN is set in fly secrets for production but the catalog")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("NODE_ENV is set in fly secrets, but the catalog") && m.ends_with("says it lives in fly-env")), "{msgs:?}");
    // LEGACY_TOKEN is in production only: parity names it too (nothing declares it production-only).
    let parity = only(&report, "D056");
    assert_eq!(parity.len(), 2, "{report}");
    let parity: Vec<&str> = parity.iter().map(|f| f["message"].as_str().unwrap()).collect();
    assert!(parity.iter().any(|m| m.starts_with("parity: LEGACY_TOKEN is set in production's fly secrets but not in staging's")), "{parity:?}");
    assert!(parity.iter().any(|m| m.starts_with("parity: NODE_ENV is set in staging's fly secrets but not in production's")), "{parity:?}");
    // FORMBRICKS_DEBUG, declared for staging only, is a declared difference.
    let declared = only(&report, "D058");
    assert_eq!(declared.len(), 1);
    assert_eq!(declared[0]["severity"], "info");
    assert!(declared[0]["message"].as_str().unwrap().ends_with("for one of them only: FORMBRICKS_DEBUG"), "{declared:?}");
}

#[test]
fn worker_secrets_and_vars() {
    let e = Env::quotekit();
    // `wrangler secret list` without the origin secret, and the secret written into [vars].
    e.write("wrangler-secrets.json", "[]");
    let wrangler = edit(&e.read("wrangler.toml"), "EDGE_ORIGINS = \"\"\n", "EDGE_ORIGINS = \"\"\nEDGE_ORIGIN_AUTH = \"hunter2-origin\"\n");
    e.write("wrangler.toml", &wrangler);
    let (code, report) = e.doctor(&[]);
    assert_eq!(code, 1);
    let missing = only(&report, "D050");
    assert_eq!(missing.len(), 1, "{report}");
    assert!(missing[0]["message"].as_str().unwrap().starts_with("EDGE_ORIGIN_AUTH is missing from wrangler secrets for production"), "{}", missing[0]);
    assert!(missing[0]["fix"].as_str().unwrap().contains("wrangler secret put EDGE_ORIGIN_AUTH"));
    let plain = only(&report, "D052");
    assert_eq!(plain.len(), 1, "{report}");
    assert!(plain[0]["message"].as_str().unwrap().ends_with("written in plain text in wrangler.toml [vars]"), "{}", plain[0]);
    // edgeguard's own levers need no catalog entry.
    assert!(only(&report, "D051").is_empty(), "{report}");
    let out = serde_json::to_string(&report).unwrap();
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn secret_in_plain_text() {
    let e = Env::quotekit();
    let fly = edit(&e.read("fly.toml"), "  PORT = \"3000\"\n", "  PORT = \"3000\"\n  STRIPE_SECRET_KEY = \"sk_live_plaintextvalue\"\n");
    e.write("fly.toml", &fly);
    let (code, report) = e.doctor(&[]);
    assert_eq!(code, 1);
    let f = only(&report, "D052");
    assert_eq!(f.len(), 1, "{report}");
    assert_eq!(f[0]["line"], 15);
    assert!(f[0]["message"].as_str().unwrap().contains("STRIPE_SECRET_KEY is a secret"), "{}", f[0]);
    assert!(f[0]["message"].as_str().unwrap().ends_with("written in plain text in fly.toml [env]"));
    assert!(f[0]["fix"].as_str().unwrap().contains("rotate it"));
}

/// A production .env with every catalog variable well formed, for the value checks.
fn good_dotenv() -> String {
    [
        "NODE_ENV=production",
        "PORT=3000",
        "NEXT_PUBLIC_SITE_URL=https://lawnquote.online",
        "NEXT_PUBLIC_APP_ENV=production",
        "NEXT_PUBLIC_SUPABASE_URL=https://abcdefghijklmnopqrst.supabase.co",
        // {"role":"anon"}
        "NEXT_PUBLIC_SUPABASE_ANON_KEY=eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.sig",
        "NEXT_PUBLIC_STRIPE_PUBLISHABLE_KEY=pk_live_publishable",
        "NEXT_PUBLIC_POSTHOG_KEY=phc_public",
        "NEXT_PUBLIC_POSTHOG_HOST=https://us.i.posthog.com",
        "SUPABASE_SERVICE_ROLE_KEY=eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig",
        "SUPABASE_DB_PASSWORD=dbpass-7Hq2",
        "STRIPE_SECRET_KEY=sk_live_secret",
        "STRIPE_WEBHOOK_SECRET=whsec_signing",
        "RESEND_API_KEY=re_resendkey",
        "GOOGLE_CLIENT_ID=1234-abc.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET=google-secret",
        "POSTHOG_PROJECT_API_KEY=phc_project",
        "POSTHOG_PERSONAL_API_KEY=phx_personal",
        "POSTHOG_PROJECT_ID=12345",
    ]
    .join("\n")
        + "\n"
}

fn dotenv_findings(e: &Env, name: &str, text: &str) -> (i32, Value) {
    e.write(name, text);
    let out = edgeguard()
        .args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--dotenv", &e.p(name), "--format", "json"])
        .output()
        .unwrap();
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn a_good_dotenv_passes() {
    let e = Env::quotekit();
    let (code, report) = dotenv_findings(&e, ".env.production", &good_dotenv());
    assert_eq!(code, 0, "{report}");
    assert!(env_findings(&report).is_empty(), "{report}");
}

#[test]
fn wrong_formats() {
    let e = Env::quotekit();
    let mut text = good_dotenv();
    for (from, to) in [
        ("NEXT_PUBLIC_SITE_URL=https://lawnquote.online", "NEXT_PUBLIC_SITE_URL=https://www.lawnquote.online"),
        ("NEXT_PUBLIC_POSTHOG_HOST=https://us.i.posthog.com", "NEXT_PUBLIC_POSTHOG_HOST=http://us.i.posthog.com"),
        ("RESEND_API_KEY=re_resendkey", "RESEND_API_KEY=resendkey"),
        ("POSTHOG_PROJECT_ID=12345", "POSTHOG_PROJECT_ID=12a45"),
        ("NEXT_PUBLIC_APP_ENV=production", "NEXT_PUBLIC_APP_ENV=staging"),
        ("PORT=3000", "PORT="),
    ] {
        text = edit(&text, from, to);
    }
    let (code, report) = dotenv_findings(&e, ".env", &text);
    assert_eq!(code, 1);
    let got: Vec<(u64, String)> = only(&report, "D053").iter().map(|f| (f["line"].as_u64().unwrap(), f["message"].as_str().unwrap().to_owned())).collect();
    let expect = [
        (2, "PORT in .env for production: it is empty"),
        (3, "NEXT_PUBLIC_SITE_URL in .env for production: its host is www.lawnquote.online, not lawnquote.online (the policy's canonical host)"),
        (4, "NEXT_PUBLIC_APP_ENV in .env for production: it is not one of the values allowed in production (\"production\")"),
        (9, "NEXT_PUBLIC_POSTHOG_HOST in .env for production: its scheme is http, not https"),
        (14, "RESEND_API_KEY in .env for production: it does not start with `re_`"),
        (19, "POSTHOG_PROJECT_ID in .env for production: it does not match the pattern `[0-9]+`"),
    ];
    assert_eq!(got.len(), expect.len(), "{got:?}");
    for ((line, msg), (want_line, want)) in got.iter().zip(expect) {
        assert_eq!(*line, want_line, "{msg}");
        assert!(msg.starts_with(want), "{msg} ≠ {want}");
    }
    // The site URL is checked against the policy compiled for the .env's environment.
    let staging = edit(&good_dotenv(), "NEXT_PUBLIC_APP_ENV=production", "NEXT_PUBLIC_APP_ENV=staging");
    e.write(".env.staging", &staging);
    let out = edgeguard()
        .args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--dotenv", &format!("staging={}", e.p(".env.staging")), "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = only(&report, "D053");
    assert!(f.iter().any(|f| f["message"].as_str().unwrap().contains("its host is lawnquote.online, not quotekit-staging.fly.dev")), "{report}");
}

#[test]
fn next_public_that_looks_secret() {
    let e = Env::quotekit();
    let text = good_dotenv()
        + "NEXT_PUBLIC_STRIPE_KEY=sk_live_oops\n"
        + "NEXT_PUBLIC_SUPABASE_KEY=eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig\n"
        + "NEXT_PUBLIC_DB=postgres://app:hunter2@db.example.com/app\n"
        + "NEXT_PUBLIC_COPY=google-secret\n";
    let (code, report) = dotenv_findings(&e, ".env", &text);
    assert_eq!(code, 1);
    let got: Vec<(u64, String)> = only(&report, "D054").iter().map(|f| (f["line"].as_u64().unwrap(), f["message"].as_str().unwrap().to_owned())).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], (20, "NEXT_PUBLIC_STRIPE_KEY holds what looks like a Stripe live secret key: NEXT_PUBLIC_* values are inlined into the JavaScript every visitor downloads".to_owned()));
    assert!(got[1].1.starts_with("NEXT_PUBLIC_SUPABASE_KEY holds what looks like a Supabase service-role key"), "{got:?}");
    assert!(got[2].1.starts_with("NEXT_PUBLIC_DB holds what looks like a URL with a password in it"), "{got:?}");
    assert!(got[3].1.starts_with("NEXT_PUBLIC_COPY holds what looks like the secret GOOGLE_CLIENT_SECRET (the same value)"), "{got:?}");
    // Uncatalogued, and secret-looking: D054 only, not D051 as well.
    assert!(only(&report, "D051").is_empty(), "{report}");
}

#[test]
fn live_and_test_keys() {
    let e = Env::quotekit();
    // Production with a test publishable key.
    let prod = edit(&good_dotenv(), "pk_live_publishable", "pk_test_publishable");
    let (code, report) = dotenv_findings(&e, ".env.production", &prod);
    assert_eq!(code, 1);
    let f = only(&report, "D055");
    assert_eq!(f.len(), 1, "{report}");
    assert_eq!(f[0]["line"], 7);
    assert!(f[0]["message"].as_str().unwrap().starts_with("NEXT_PUBLIC_STRIPE_PUBLISHABLE_KEY in .env for production: a test key (`pk_test_…`) in production"), "{}", f[0]);
    assert!(f[0]["fix"].as_str().unwrap().contains("`pk_live_…`"));
    // Staging with a live secret key (and a test publishable key, which is right).
    let staging = edit(&edit(&edit(&good_dotenv(), "pk_live_publishable", "pk_test_publishable"), "NEXT_PUBLIC_APP_ENV=production", "NEXT_PUBLIC_APP_ENV=staging"), "NEXT_PUBLIC_SITE_URL=https://lawnquote.online", "NEXT_PUBLIC_SITE_URL=https://quotekit-staging.fly.dev");
    e.write(".env.staging", &staging);
    let out = edgeguard()
        .args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--dotenv", &format!("staging={}", e.p(".env.staging")), "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = only(&report, "D055");
    assert_eq!(f.len(), 1, "{report}");
    assert!(f[0]["message"].as_str().unwrap().starts_with("STRIPE_SECRET_KEY in .env for staging: a live key (`sk_live_…`) in staging"), "{}", f[0]);
    assert_eq!(env_findings(&report).len(), 1, "{report}");
}

#[test]
fn parity_and_shared_values() {
    let e = Env::quotekit();
    // The same Stripe secret in both environments (same Fly digest).
    let prod: Value = serde_json::from_str(&e.read("prod.secrets.json")).unwrap();
    let digest = prod.as_array().unwrap().iter().find(|s| s["Name"] == "STRIPE_SECRET_KEY").unwrap()["Digest"].as_str().unwrap().to_owned();
    let staging: Vec<Value> = serde_json::from_str::<Value>(&e.read("staging.secrets.json"))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| if s["Name"] == "STRIPE_SECRET_KEY" { serde_json::json!({"Name": "STRIPE_SECRET_KEY", "Digest": digest}) } else { s.clone() })
        .collect();
    e.write("staging.secrets.json", &serde_json::to_string_pretty(&staging).unwrap());
    // An optional variable production has and staging lacks.
    let fly = edit(&e.read("fly.toml"), "  PORT = \"3000\"\n", "  PORT = \"3000\"\n  NEXT_TELEMETRY_DISABLED = \"1\"\n");
    e.write("fly.toml", &fly);
    let (code, report) = e.doctor(&[]);
    assert_eq!(code, 1);
    let same = only(&report, "D057");
    assert_eq!(same.len(), 1, "{report}");
    assert!(same[0]["file"].as_str().unwrap().ends_with("staging.secrets.json"));
    assert!(same[0]["message"].as_str().unwrap().starts_with("STRIPE_SECRET_KEY has the same digest in staging and production"), "{}", same[0]);
    let parity = only(&report, "D056");
    assert_eq!(parity.len(), 1, "{report}");
    assert_eq!(parity[0]["line"], 15);
    assert!(parity[0]["message"].as_str().unwrap().starts_with("parity: NEXT_TELEMETRY_DISABLED is set in production's fly.toml [env] but not in staging's"), "{}", parity[0]);
    // Values compared across .env files, without digests.
    let staging = edit(&edit(&edit(&good_dotenv(), "pk_live_publishable", "pk_test_publishable"), "sk_live_secret", "sk_test_secret"), "NEXT_PUBLIC_APP_ENV=production", "NEXT_PUBLIC_APP_ENV=staging");
    e.write(".env.staging", &edit(&staging, "https://lawnquote.online", "https://quotekit-staging.fly.dev"));
    e.write(".env.production", &good_dotenv());
    let out = edgeguard()
        .args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--dotenv", &e.p(".env.production"), "--dotenv", &format!("staging={}", e.p(".env.staging")), "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let same: Vec<String> = only(&report, "D057").iter().map(|f| f["message"].as_str().unwrap().split(' ').next().unwrap().to_owned()).collect();
    assert_eq!(same, ["RESEND_API_KEY", "STRIPE_WEBHOOK_SECRET", "SUPABASE_DB_PASSWORD", "SUPABASE_SERVICE_ROLE_KEY"], "{report}");
    assert_eq!(env_findings(&report).len(), 4, "{report}");
}

#[test]
fn placeholders_duplicates_and_unreadable_inputs() {
    let e = Env::quotekit();
    let text = edit(&good_dotenv(), "STRIPE_SECRET_KEY=sk_live_secret", "STRIPE_SECRET_KEY=sk_live_YOUR_NEW_SECRET_KEY") + "RESEND_API_KEY=re_again\nnot a line\n";
    let (code, report) = dotenv_findings(&e, ".env", &text);
    assert_eq!(code, 1);
    let ids: Vec<(String, u64)> = env_findings(&report).iter().map(|f| (f["id"].as_str().unwrap().to_owned(), f["line"].as_u64().unwrap())).collect();
    let want: Vec<(String, u64)> = [("D060", 20), ("D061", 21), ("D059", 12)].iter().map(|(a, b)| ((*a).to_owned(), *b)).collect();
    assert_eq!(ids, want, "{report}");
    e.write("bad.json", "{\"not\": \"a list\"}");
    let out = edgeguard().args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--fly-secrets", &e.p("bad.json"), "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only(&report, "D061").len(), 1, "{report}");
    // An input for an environment the catalog does not declare.
    let out = edgeguard().args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--dotenv", &format!("preview={}", e.p(".env")), "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(only(&report, "D050")[0]["message"].as_str().unwrap().contains("the environment `preview`, which the catalog"), "{report}");
}

#[test]
fn no_secret_value_is_ever_printed() {
    let e = Env::quotekit();
    // Every value distinctive, many of them wrong so that findings name their variables.
    let values = [
        ("STRIPE_SECRET_KEY", "sk_test_Zq81SECRETstripeVALUE"),
        ("STRIPE_WEBHOOK_SECRET", "whsecZq82SECRETwebhookVALUE"),
        ("SUPABASE_SERVICE_ROLE_KEY", "Zq83SECRETserviceVALUE"),
        ("SUPABASE_DB_PASSWORD", "YOUR_Zq84SECRETdbVALUE"),
        ("RESEND_API_KEY", "Zq85SECRETresendVALUE"),
        ("GOOGLE_CLIENT_SECRET", "Zq86SECRETgoogleVALUE"),
        ("POSTHOG_PERSONAL_API_KEY", "phc_Zq87SECRETposthogVALUE"),
        ("NEXT_PUBLIC_LEAK", "sk_live_Zq88SECRETleakVALUE"),
        ("NEXT_PUBLIC_COPY", "Zq86SECRETgoogleVALUE"),
        ("NEXT_PUBLIC_SITE_URL", "http://Zq89user:Zq89SECRETpassVALUE@lawnquote.online"),
        ("UNLISTED_TOKEN", "Zq90SECRETunlistedVALUE"),
    ];
    let mut text = good_dotenv();
    for (name, value) in values {
        text = text.lines().filter(|l| !l.starts_with(&format!("{name}="))).collect::<Vec<_>>().join("\n") + "\n";
        text.push_str(&format!("{name}={value}\n"));
        text.push_str(&format!("{name}=\"{value}\"\n"));
    }
    e.write(".env", &text);
    e.write(".env.staging", &text);
    let mut all = String::new();
    for format in ["text", "json", "github"] {
        let out = edgeguard()
            .args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml"), "--dotenv", &e.p(".env"), "--dotenv", &format!("staging={}", e.p(".env.staging")), "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    for id in ["D051", "D053", "D054", "D055", "D057", "D059", "D060"] {
        assert!(all.contains(id), "{id} not reported, so its message was not tested:\n{all}");
    }
    assert!(!all.contains("SECRET") || !all.contains("VALUE"), "a value leaked:\n{all}");
    for (_, value) in values {
        assert!(!all.contains(value), "{value} printed:\n{all}");
        let core = value.split("SECRET").nth(1).unwrap();
        assert!(!all.contains(core), "part of {value} printed:\n{all}");
    }
    assert!(!all.contains("Zq8") && !all.contains("Zq9"), "a value fragment printed:\n{all}");
}

#[test]
fn catalog_diagnostics_are_located_all_at_once() {
    let e = Env::quotekit();
    let bad = "version = 1\n[environments.production]\nlive = \"yes\"\n[vars.NEXT_PUBLIC_TOKEN]\nsource = \"fly-secret\"\n[vars.X]\nsorce = \"build\"\nsource = \"fly-env\"\nenvironments = [\"prod\"]\n";
    e.write("env.toml", bad);
    let out = edgeguard().args(["doctor", &e.p("policy.toml"), "--catalog", &e.p("env.toml")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for (code, at) in [("C003", ":3:8"), ("C012", ":5:10"), ("C013", ":5:10"), ("C002", ":7:1"), ("C011", ":9:17")] {
        assert!(err.contains(&format!("error[{code}]")), "{code} missing:\n{err}");
        assert!(err.contains(at), "{at} missing:\n{err}");
    }
    assert!(err.contains("help: did you mean `source`?"), "{err}");
    assert!(err.contains("help: declared: production"), "{err}");
    assert!(err.contains("fix the catalog first"), "{err}");
    // Env inputs need a catalog: a usage error.
    edgeguard().args(["doctor", &e.p("policy.toml"), "--dotenv", &e.p("x")]).assert().code(2);
}

#[test]
fn schema_describes_the_catalog() {
    let out = edgeguard().args(["schema", "--catalog"]).output().unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "edgeguard environment catalog");
    assert!(schema["properties"]["vars"].is_object());
    let text = serde_json::to_string(&schema).unwrap();
    for word in ["fly-secret", "fly-env", "build", "worker-var", "worker-secret", "live_prefix", "mirrors"] {
        assert!(text.contains(word), "{word}");
    }
}
