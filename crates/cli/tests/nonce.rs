//! `edgeguard nonce`, run as a user runs it: pages from files and stdin, exit codes, stdout and
//! stderr. tests/e2e compare its `--nonce` output with what workerd sent, so the bytes matter.

// clippy.toml exempts `#[test]` functions; the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn edgeguard() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("edgeguard")
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const NONCE: &str = "TjBuY2U=";

/// A Next.js-shaped page: a stylesheet, a preload, a style, a script chunk, an inline
/// `self.__next_f.push`, an attacker's script carrying its own nonce, a script in a comment and
/// an inline handler (nonces do not cover handlers; the CSP blocks them).
const PAGE: &str = r#"<!DOCTYPE html><html><head><link rel=stylesheet href=/a.css><link rel="preload" as="script" href="/_next/static/chunks/main.js"/><style>body{margin:0}</style><script src="/_next/static/chunks/main.js" async=""></script></head><body><p onclick="x()">hi</p><!-- <script>c</script> --><script>self.__next_f.push([1,"0:[\"$\",\"p\",null,{}]\n"])</script><script nonce="evil">alert(1)</script></body></html>"#;

const STRICT: &str = r#"<!DOCTYPE html><html><head><link rel=stylesheet href=/a.css nonce="TjBuY2U="><link rel="preload" as="script" href="/_next/static/chunks/main.js" nonce="TjBuY2U=" /><style nonce="TjBuY2U=">body{margin:0}</style><script src="/_next/static/chunks/main.js" async="" nonce="TjBuY2U="></script></head><body><p onclick="x()">hi</p><!-- <script>c</script> --><script nonce="TjBuY2U=">self.__next_f.push([1,"0:[\"$\",\"p\",null,{}]\n"])</script><script nonce="TjBuY2U=">alert(1)</script></body></html>"#;

#[test]
fn a_given_nonce_reproduces_the_page_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let page = write(&dir, "page.html", PAGE.as_bytes());
    edgeguard()
        .arg("nonce")
        .arg(&page)
        .args(["--nonce", NONCE])
        .assert()
        .success()
        .stdout(STRICT)
        .stderr("nonce TjBuY2U=: 6 elements marked\n");
    // The same from stdin.
    edgeguard().args(["nonce", "-", "--nonce", NONCE]).write_stdin(PAGE).assert().success().stdout(STRICT);
}

#[test]
fn the_output_is_the_reference_rewriter_whatever_the_read_size() {
    // Tags straddling the 64 KiB read boundaries, a long inline script, invalid UTF-8.
    let mut page = b"<html><body>".to_vec();
    let mut i = 0;
    while page.len() < 300_000 {
        page.extend_from_slice(format!("<p>{}</p><script src=/c{i}.js async></script>", "x".repeat(i % 977)).as_bytes());
        page.extend_from_slice(b"<link rel=modulepreload href=/m.js>\xff\xfe<style>.a{}</style>");
        i += 1;
    }
    page.extend_from_slice(format!("<script>{}</script></body></html>", "y".repeat(70_000)).as_bytes());
    let expected = edgeguard_core::csp::rewrite(&page, NONCE).unwrap();
    let out = edgeguard().args(["nonce", "-", "--nonce", NONCE]).write_stdin(page).assert().success();
    let out = out.get_output();
    assert!(out.stdout == expected, "stdout differs from csp::rewrite");
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("nonce {NONCE}: {} elements marked\n", 3 * i + 1));
}

#[test]
fn without_nonce_a_fresh_random_one_each_run() {
    let nonce_of = || {
        let out = edgeguard().args(["nonce", "-"]).write_stdin("<script>a</script>").assert().success();
        let out = out.get_output();
        let stderr = String::from_utf8(out.stderr.clone()).unwrap();
        let nonce = stderr.strip_prefix("nonce ").and_then(|s| s.strip_suffix(": 1 element marked\n")).unwrap_or_else(|| panic!("{stderr}"));
        // 128 bits, standard base64.
        assert_eq!(nonce.len(), 24, "{nonce}");
        assert!(nonce.ends_with("==") && nonce[..22].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
        assert_eq!(String::from_utf8(out.stdout.clone()).unwrap(), format!("<script nonce=\"{nonce}\">a</script>"));
        nonce.to_owned()
    };
    assert_ne!(nonce_of(), nonce_of());
}

#[test]
fn pages_without_scripts_and_empty_input_pass_through() {
    let page = "<p>plain</p><link rel=icon href=/f.ico><noscript><script>n</script></noscript><textarea><script></textarea>";
    edgeguard()
        .args(["nonce", "-", "--nonce", NONCE])
        .write_stdin(page)
        .assert()
        .success()
        .stdout(page)
        .stderr("nonce TjBuY2U=: 0 elements marked\n");
    edgeguard().args(["nonce", "-", "--nonce", NONCE]).write_stdin("").assert().success().stdout("");
}

#[test]
fn unreadable_input_and_bad_nonces_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    edgeguard()
        .arg("nonce")
        .arg(dir.path().join("missing.html"))
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("error: cannot read `").and(predicate::str::contains("missing.html")));
    // A directory opens on Linux but does not read.
    edgeguard().arg("nonce").arg(dir.path()).assert().code(2).stderr(predicate::str::contains("cannot read"));
    let page = write(&dir, "page.html", b"<script></script>");
    for bad in ["", "a b", "a\"b", "x'", "abc===", "=", "ü"] {
        edgeguard()
            .arg("nonce")
            .arg(&page)
            .args(["--nonce", bad])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("is not a CSP base64-value"));
    }
    // base64url and unpadded nonces are CSP base64-values too.
    for good in ["abc", "a-b_c", "ab+/==", "AAAAAAAAAAAAAAAAAAAAAA=="] {
        edgeguard().arg("nonce").arg(&page).args(["--nonce", good]).assert().success().stdout(format!("<script nonce=\"{good}\"></script>"));
    }
}

#[test]
fn a_refused_page_stops_there_and_fails() {
    // lol_html in strict mode (as workerd runs it) cannot tell whether a browser would run this
    // script, so it stops rather than guess; nothing after the ambiguity is sent.
    let page = "<p>before</p><script>ok</script><select><xmp><script>ambiguous</script></select><script>never</script>";
    let out = edgeguard().args(["nonce", "-", "--nonce", NONCE]).write_stdin(page).assert().code(1);
    let out = out.get_output();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    // What was rewritten before the refusal was sent (how much of the text lol_html had let go
    // of by then is its business).
    assert!(stdout.starts_with("<p>before</p><script nonce=\"TjBuY2U=\">"), "{stdout}");
    assert!(!stdout.contains("ambiguous") && !stdout.contains("never"), "{stdout}");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(stderr.starts_with("error: the rewriter refused stdin") && stderr.contains("xmp"), "{stderr}");

    // lol_html's memory limit: one start tag longer than the rewriter may buffer.
    let mut huge = b"<script src=\"".to_vec();
    huge.resize(9 << 20, b'a');
    huge.extend_from_slice(b"\"></script>");
    edgeguard()
        .args(["nonce", "-", "--nonce", NONCE])
        .write_stdin(huge)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("refused stdin").and(predicate::str::contains("memory")));
}
