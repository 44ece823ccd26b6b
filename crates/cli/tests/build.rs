//! `edgeguard build` and what `doctor` says about the directories it writes: the prebuilt
//! engine (the same bytes for every policy) next to a policy's bundle, run as a user runs it.
//!
//! Needs the engine inside the binary under test (`make engine` before `cargo test`; `make
//! test` does it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

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

const ENGINE_FILES: [&str; 3] = ["engine_bg.wasm", "engine.js", "shell.mjs"];

/// `build POLICY -o DIR extra…` in `cwd`; stdout on success, the test fails otherwise.
fn build(cwd: &Path, policy: &Path, dir: &str, extra: &[&str]) -> String {
    let out = edgeguard().current_dir(cwd).arg("build").arg(policy).args(["-o", dir]).args(extra).output().unwrap();
    assert!(out.status.success(), "build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

#[test]
fn two_policies_share_the_engine_bytes_and_differ_in_the_bundle() {
    let tmp = TempDir::new().unwrap();
    let printed = build(tmp.path(), &fixture("quotekit.toml"), "a", &[]);
    build(tmp.path(), &fixture("minimal.toml"), "b", &[]);
    for f in ENGINE_FILES {
        assert_eq!(read(tmp.path().join("a").join(f)), read(tmp.path().join("b").join(f)), "{f} is the same for every policy");
    }
    let (a, b) = (read(tmp.path().join("a/policy.egb")), read(tmp.path().join("b/policy.egb")));
    assert_ne!(a, b);
    // The bundle is what `compile` writes for the same policy, and it loads.
    edgeguard().current_dir(tmp.path()).arg("compile").arg(fixture("quotekit.toml")).args(["-o", "q.egb"]).assert().success();
    assert_eq!(a, read(tmp.path().join("q.egb")));
    let bundle = edgeguard_core::Bundle::from_bytes(&a).unwrap();
    // The entry imports the bundle and hands it to the shell.
    let entry = String::from_utf8(read(tmp.path().join("a/index.mjs"))).unwrap();
    assert!(entry.contains("import policy from \"./policy.egb\";") && entry.contains("export default edgeguard({ policy });"), "{entry}");
    assert!(entry.contains("export { EdgeguardLimiter, EdgeguardStats };"));
    // The manifest names what was built; the summary and wrangler lines are printed.
    let manifest: Value = serde_json::from_slice(&read(tmp.path().join("a/edgeguard.json"))).unwrap();
    assert_eq!(manifest["policy"]["revision"], bundle.revision.as_str());
    assert_eq!(manifest["policy"]["environment"], "production");
    assert_eq!(manifest["engine"]["format"], edgeguard_core::FORMAT_VERSION);
    assert!(manifest.get("shadow").is_none());
    assert!(printed.starts_with("wrote a — engine "), "{printed}");
    assert!(printed.contains(&format!("revision {}…", &bundle.revision[..12])), "{printed}");
    assert!(printed.contains("main = \"a/index.mjs\"") && printed.contains("globs = [\"**/*.egb\"]"), "{printed}");
}

#[test]
fn environments_are_different_revisions() {
    let tmp = TempDir::new().unwrap();
    build(tmp.path(), &fixture("quotekit.toml"), "prod", &[]);
    build(tmp.path(), &fixture("quotekit.toml"), "staging", &["--env", "staging"]);
    let prod = edgeguard_core::Bundle::from_bytes(&read(tmp.path().join("prod/policy.egb"))).unwrap();
    let staging = edgeguard_core::Bundle::from_bytes(&read(tmp.path().join("staging/policy.egb"))).unwrap();
    assert_eq!(staging.app.environment, "staging");
    assert_ne!(prod.revision, staging.revision);
}

#[test]
fn a_policy_with_errors_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let policy = tmp.path().join("broken.toml");
    std::fs::write(&policy, "version = 1\n[app]\nhosts = [\"x.test\"]\n[[routes]]\npath = \"/a\"\nmethods = [\"FETCH\"]\n[limits.api]\nrate = \"lots\"\n").unwrap();
    edgeguard()
        .current_dir(tmp.path())
        .args(["build", "broken.toml", "-o", "edge"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("broken.toml:6:").and(predicate::str::contains("broken.toml:8:")));
    assert!(!tmp.path().join("edge").exists());
    // --deny-warnings refuses a policy with warnings the same way.
    edgeguard().current_dir(tmp.path()).arg("build").arg(fixture("quotekit.toml")).args(["-o", "edge", "--deny-warnings"]).assert().code(1);
    assert!(!tmp.path().join("edge").exists());
}

#[test]
fn a_directory_that_is_not_a_build_is_left_alone() {
    let tmp = TempDir::new().unwrap();
    std::fs::create_dir(tmp.path().join("src")).unwrap();
    std::fs::write(tmp.path().join("src/app.js"), "keep me").unwrap();
    edgeguard()
        .current_dir(tmp.path())
        .arg("build")
        .arg(fixture("minimal.toml"))
        .args(["-o", "src"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not an edgeguard build directory"));
    assert_eq!(read(tmp.path().join("src/app.js")), b"keep me");
    assert!(!tmp.path().join("src/policy.egb").exists());
    // A directory left half-written by an interrupted build of an older edgeguard holds only
    // build files: it is rebuilt, not refused.
    std::fs::create_dir(tmp.path().join("half")).unwrap();
    std::fs::write(tmp.path().join("half/engine_bg.wasm"), b"\0asm").unwrap();
    build(tmp.path(), &fixture("minimal.toml"), "half", &[]);
    assert!(tmp.path().join("half/edgeguard.json").is_file());
    // An earlier build is replaced in place.
    build(tmp.path(), &fixture("minimal.toml"), "edge", &[]);
    build(tmp.path(), &fixture("quotekit.toml"), "edge", &[]);
    assert_eq!(edgeguard_core::Bundle::from_bytes(&read(tmp.path().join("edge/policy.egb"))).unwrap().app.name, "quotekit");
}

#[test]
fn shadow_ships_the_candidate_and_a_rebuild_without_it_removes_it() {
    let tmp = TempDir::new().unwrap();
    let printed = build(tmp.path(), &fixture("quotekit.toml"), "edge", &["--shadow", fixture("strict.toml").to_str().unwrap()]);
    assert!(printed.contains("shadow: shadow.egb"), "{printed}");
    let entry = String::from_utf8(read(tmp.path().join("edge/index.mjs"))).unwrap();
    assert!(entry.contains("import shadow from \"./shadow.egb\";") && entry.contains("edgeguard({ policy, shadow })"), "{entry}");
    let candidate = edgeguard_core::Bundle::from_bytes(&read(tmp.path().join("edge/shadow.egb"))).unwrap();
    let manifest: Value = serde_json::from_slice(&read(tmp.path().join("edge/edgeguard.json"))).unwrap();
    assert_eq!(manifest["shadow"]["revision"], candidate.revision.as_str());
    build(tmp.path(), &fixture("quotekit.toml"), "edge", &[]);
    assert!(!tmp.path().join("edge/shadow.egb").exists());
    assert!(!String::from_utf8(read(tmp.path().join("edge/index.mjs"))).unwrap().contains("shadow"));
    // A candidate with errors fails the build like the active policy would.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "version = 1\n[headers]\npreset = \"nope\"\n").unwrap();
    edgeguard().current_dir(tmp.path()).arg("build").arg(fixture("minimal.toml")).args(["-o", "other", "--shadow", "bad.toml"]).assert().code(1).stderr(predicate::str::contains("bad.toml:3:"));
    assert!(!tmp.path().join("other").exists());
}

const GLOBAL_POLICY: &str = "version = 1\n[app]\nname = \"Shop Front\"\nhosts = [\"shop.test\"]\n[defaults]\nlimit = \"api\"\n[limits.api]\nrate = \"100/1m\"\nscope = \"global\"\n[origins.app]\nurl = \"https://shop.fly.dev\"\n";

#[test]
fn wrangler_toml_is_created_or_merged_keeping_the_users_settings() {
    let tmp = TempDir::new().unwrap();
    std::fs::write(tmp.path().join("policy.toml"), GLOBAL_POLICY).unwrap();
    // Created: a name from the app, main, the Data rule and the limiter a global limit needs.
    let printed = build(tmp.path(), Path::new("policy.toml"), "edge", &["--wrangler-toml", "wrangler.toml"]);
    assert!(printed.contains("wrangler.toml: created"), "{printed}");
    let created: toml::Table = toml::from_str(&String::from_utf8(read(tmp.path().join("wrangler.toml"))).unwrap()).unwrap();
    assert_eq!(created["name"].as_str(), Some("shop-front-edge"));
    assert_eq!(created["main"].as_str(), Some("edge/index.mjs"));
    assert_eq!(created["rules"][0]["type"].as_str(), Some("Data"));
    assert_eq!(created["durable_objects"]["bindings"][0]["class_name"].as_str(), Some("EdgeguardLimiter"));
    assert_eq!(created["migrations"][0]["new_sqlite_classes"][0].as_str(), Some("EdgeguardLimiter"));
    // Run again: nothing to change.
    let printed = build(tmp.path(), Path::new("policy.toml"), "edge", &["--wrangler-toml", "wrangler.toml"]);
    assert!(printed.contains("wrangler.toml: already up to date"), "{printed}");

    // Merged into a user's file: comments, vars, other bindings and migrations stay.
    let mine = "# my worker\nname = \"mine\"\nmain = \"old/shell.mjs\"\ncompatibility_date = \"2025-10-01\"\n\n[vars]\nEDGE_ACTIVE_ORIGIN = \"app\" # rollback lever\n\n[[kv_namespaces]]\nbinding = \"CACHE\"\nid = \"abc\"\n\n[[durable_objects.bindings]]\nname = \"ROOMS\"\nclass_name = \"Room\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Room\"]\n";
    std::fs::create_dir(tmp.path().join("deploy")).unwrap();
    std::fs::write(tmp.path().join("deploy/wrangler.toml"), mine).unwrap();
    build(tmp.path(), Path::new("policy.toml"), "edge", &["--wrangler-toml", "deploy/wrangler.toml"]);
    let text = String::from_utf8(read(tmp.path().join("deploy/wrangler.toml"))).unwrap();
    assert!(text.starts_with("# my worker\n") && text.contains("# rollback lever"), "{text}");
    let merged: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(merged["name"].as_str(), Some("mine"));
    assert_eq!(merged["main"].as_str(), Some("../edge/index.mjs"), "relative to the file's directory");
    assert_eq!(merged["compatibility_date"].as_str(), Some("2025-10-01"));
    assert_eq!(merged["kv_namespaces"][0]["binding"].as_str(), Some("CACHE"));
    let classes: Vec<&str> = merged["durable_objects"]["bindings"].as_array().unwrap().iter().map(|b| b["class_name"].as_str().unwrap()).collect();
    assert_eq!(classes, ["Room", "EdgeguardLimiter"]);
    assert_eq!(merged["migrations"].as_array().unwrap().len(), 2);
    // The merged file passes doctor's wrangler checks for the built worker.
    edgeguard()
        .current_dir(tmp.path())
        .args(["doctor", "policy.toml", "--wrangler", "deploy/wrangler.toml"])
        .assert()
        .success()
        .stdout(predicate::str::contains("D044").not().and(predicate::str::contains("D046").not()).and(predicate::str::contains("D002").not()).and(predicate::str::contains("D003").not()));
    // wrangler.json is the user's to edit.
    std::fs::write(tmp.path().join("wrangler.jsonc"), "{}").unwrap();
    edgeguard().current_dir(tmp.path()).args(["build", "policy.toml", "-o", "edge", "--wrangler-toml", "wrangler.jsonc"]).assert().code(2);
}

/// doctor on a wrangler.toml whose `main` is a build directory, as JSON: (exit code, ids).
fn doctor(cwd: &Path, extra: &[&str]) -> (i32, Vec<String>, Value) {
    let out = edgeguard().current_dir(cwd).args(["doctor", "policy.toml", "--format", "json"]).args(extra).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = report["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect();
    (out.status.code().unwrap(), ids, report)
}

#[test]
fn doctor_checks_the_built_worker_before_deploy() {
    let tmp = TempDir::new().unwrap();
    std::fs::copy(fixture("quotekit.toml"), tmp.path().join("policy.toml")).unwrap();
    std::fs::copy(fixture("deploy/wrangler.toml"), tmp.path().join("wrangler.toml")).unwrap();
    let wrangler = ["--wrangler", "wrangler.toml"];
    // Not built yet: D013.
    let (code, ids, _) = doctor(tmp.path(), &wrangler);
    assert_eq!((code, ids), (0, vec!["D013".to_owned()]));
    build(tmp.path(), Path::new("policy.toml"), "edge", &[]);
    let (code, ids, report) = doctor(tmp.path(), &wrangler);
    assert_eq!((code, ids.is_empty()), (0, true), "{report:#}");

    // Built for another environment: staging's policy would go live in production, an error.
    build(tmp.path(), Path::new("policy.toml"), "edge", &["--env", "staging"]);
    let (code, ids, report) = doctor(tmp.path(), &wrangler);
    assert_eq!((code, ids), (1, vec!["D045".to_owned()]), "{report:#}");
    assert_eq!(report["findings"][0]["severity"], "error");
    assert!(report["findings"][0]["message"].as_str().unwrap().contains("staging"));
    let (code, _, _) = doctor(tmp.path(), &[&wrangler[..], &["--env", "staging"]].concat());
    assert_eq!(code, 0);
    build(tmp.path(), Path::new("policy.toml"), "edge", &[]);

    // A damaged bundle, a bundle of another format, a missing one: D044, an error.
    let good = read(tmp.path().join("edge/policy.egb"));
    let mut flipped = good.clone();
    flipped[100] ^= 1;
    let mut other_format = good.clone();
    other_format[4] = 9;
    for (what, bytes) in [("damaged", flipped), ("format", other_format), ("cut short", good[..good.len() / 2].to_vec())] {
        std::fs::write(tmp.path().join("edge/policy.egb"), &bytes).unwrap();
        let (code, ids, report) = doctor(tmp.path(), &wrangler);
        assert_eq!((code, ids), (1, vec!["D044".to_owned()]), "{what}: {report:#}");
        assert!(report["findings"][0]["message"].as_str().unwrap().contains("503 edge-misconfigured"), "{what}");
        // `--worker DIR` checks a directory without a wrangler.toml.
        let (code, ids, _) = doctor(tmp.path(), &["--worker", "edge"]);
        assert_eq!((code, ids), (1, vec!["D044".to_owned()]), "{what}");
    }
    std::fs::remove_file(tmp.path().join("edge/policy.egb")).unwrap();
    let (code, ids, _) = doctor(tmp.path(), &wrangler);
    assert_eq!((code, ids), (1, vec!["D044".to_owned()]));
    std::fs::write(tmp.path().join("edge/policy.egb"), &good).unwrap();
    // Any module the entry imports missing — the entry itself, the shell, a shadow bundle.
    for gone in ["shell.mjs", "index.mjs"] {
        let keep = read(tmp.path().join("edge").join(gone));
        std::fs::remove_file(tmp.path().join("edge").join(gone)).unwrap();
        let (code, ids, report) = doctor(tmp.path(), &wrangler);
        assert_eq!((code, ids), (1, vec!["D044".to_owned()]), "{gone}: {report:#}");
        assert!(report["findings"][0]["message"].as_str().unwrap().contains(gone));
        std::fs::write(tmp.path().join("edge").join(gone), keep).unwrap();
    }
    build(tmp.path(), Path::new("policy.toml"), "edge", &["--shadow", "policy.toml"]);
    std::fs::remove_file(tmp.path().join("edge/shadow.egb")).unwrap();
    let (code, ids, _) = doctor(tmp.path(), &wrangler);
    assert_eq!((code, ids), (1, vec!["D044".to_owned()]));
    build(tmp.path(), Path::new("policy.toml"), "edge", &[]);

    // No Data rule for .egb: wrangler could not bundle the policy.
    let text = std::fs::read_to_string(tmp.path().join("wrangler.toml")).unwrap();
    let without = text.lines().filter(|l| !l.starts_with("rules =")).collect::<Vec<_>>().join("\n");
    std::fs::write(tmp.path().join("wrangler.toml"), without).unwrap();
    let (code, ids, _) = doctor(tmp.path(), &wrangler);
    assert_eq!((code, ids), (1, vec!["D046".to_owned()]));
}

#[test]
fn another_environment_goes_under_env_in_wrangler_toml() {
    let tmp = TempDir::new().unwrap();
    std::fs::write(tmp.path().join("policy.toml"), GLOBAL_POLICY.replace("[origins.app]", "[env.staging.app]\nhosts = [\"staging.shop.test\"]\n\n[origins.app]")).unwrap();
    build(tmp.path(), Path::new("policy.toml"), "edge", &["--wrangler-toml", "wrangler.toml"]);
    // The policy's own environment (production) stays at the top level, what `wrangler deploy` ships.
    build(tmp.path(), Path::new("policy.toml"), "edge-prod", &["--env", "production", "--wrangler-toml", "wrangler.toml"]);
    let printed = build(tmp.path(), Path::new("policy.toml"), "edge-staging", &["--env", "staging", "--wrangler-toml", "wrangler.toml"]);
    assert!(printed.contains("[env.staging] main = \"edge-staging/index.mjs\""), "{printed}");
    let doc: toml::Table = toml::from_str(&String::from_utf8(read(tmp.path().join("wrangler.toml"))).unwrap()).unwrap();
    assert_eq!(doc["main"].as_str(), Some("edge-prod/index.mjs"));
    assert_eq!(doc["env"]["staging"]["main"].as_str(), Some("edge-staging/index.mjs"));
    assert_eq!(doc["env"]["staging"]["durable_objects"]["bindings"][0]["name"].as_str(), Some("EDGEGUARD_LIMITER"));
    // Without --wrangler-toml the printed lines say the same.
    let printed = build(tmp.path(), Path::new("policy.toml"), "edge-staging", &["--env", "staging"]);
    assert!(printed.contains("[env.staging]\nmain = \"edge-staging/index.mjs\""), "{printed}");
}

#[test]
fn a_wrangler_toml_it_cannot_edit_fails_before_anything_is_written() {
    let tmp = TempDir::new().unwrap();
    std::fs::write(tmp.path().join("policy.toml"), GLOBAL_POLICY).unwrap();
    for text in ["main = ", "migrations = \"v1\"\n"] {
        std::fs::write(tmp.path().join("wrangler.toml"), text).unwrap();
        edgeguard()
            .current_dir(tmp.path())
            .args(["build", "policy.toml", "-o", "edge", "--wrangler-toml", "wrangler.toml"])
            .assert()
            .code(2)
            .stdout("");
        assert!(!tmp.path().join("edge").exists(), "{text}");
        assert_eq!(read(tmp.path().join("wrangler.toml")), text.as_bytes());
    }
}
