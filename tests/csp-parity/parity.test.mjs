// CSP lint parity with Google's CSP Evaluator (npm `csp_evaluator`).
//
// For every policy in corpus.json: run the real evaluator (`evaluate()`, CSP3, its default
// checks), turn the same CSP into an edgeguard policy, run `edgeguard check --format json`, and
// compare the (finding type, severity) pairs, counted. edgeguard names the evaluator's type and
// severity in each CSP warning: "… (CSP Evaluator: TYPE, severity)".
//
// Entries with `strict` are `[csp] strict = "nonce"` renderings (a fixture with strict turned on,
// or a policy written out): the test checks that `edgeguard explain` renders exactly that CSP for
// an HTML page (its nonce placeholder filled with the compiler's LINT_NONCE), that the evaluator finds
// nothing HIGH in it, and that `check` on the strict policy agrees with the evaluator.
//
// The deliberate differences are the ALLOWED list below, one line of justification each, and
// nothing else; docs/diagnostics.md ("Parity with CSP Evaluator") lists the same ids. A finding
// one side has and the other lacks that no entry explains fails the test: fix
// crates/compiler/src/csp/, don't widen the list.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as angular from "csp_evaluator/dist/allowlist_bypasses/angular.js";
import * as jsonp from "csp_evaluator/dist/allowlist_bypasses/jsonp.js";
import { CspEvaluator } from "csp_evaluator/dist/evaluator.js";
import { Severity, Type } from "csp_evaluator/dist/finding.js";
import { CspParser } from "csp_evaluator/dist/parser.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "target/debug/edgeguard");
// LINT_NONCE is in csp/mod.rs, the endpoint lists in csp/evaluator.rs.
const CSP_RS = ["mod.rs", "evaluator.rs"]
  .map((f) => fs.readFileSync(path.join(ROOT, "crates/compiler/src/csp", f), "utf8"))
  .join("\n");
const corpus = JSON.parse(fs.readFileSync(new URL("./corpus.json", import.meta.url), "utf8"));

/** edgeguard's CSP lint codes and the evaluator finding type each one reports. */
const CODES = {
  W010: "SCRIPT_UNSAFE_INLINE",
  W011: "SCRIPT_UNSAFE_EVAL",
  W012: "PLAIN_URL_SCHEMES",
  W013: "PLAIN_WILDCARD",
  W014: "MISSING_DIRECTIVES",
  W015: "MISSING_DIRECTIVES",
  W016: "SRC_HTTP",
  W017: "MISSING_DIRECTIVES",
  W018: "NONCE_LENGTH",
  W019: "IP_SOURCE",
  W021: "SCRIPT_ALLOWLIST_BYPASS",
  W022: "SCRIPT_UNSAFE_HASHES",
  W023: "OBJECT_ALLOWLIST_BYPASS",
  W024: "DEPRECATED_DIRECTIVE",
  W025: "MISSING_SEMICOLON",
};
/** Every code the CSP compiler emits (the rest of `check`'s output is about other tables). */
const CSP_CODE = /^(W01\d|W02[0-6]|E03[0-4])$/;

/** Directives written `true` when the CSP gives them no value; others become `[]`. */
const FLAGS = new Set(["upgrade-insecure-requests", "block-all-mixed-content", "sandbox", "trusted-types"]);

// ---------------------------------------------------------------------------------------------
// edgeguard's W021 endpoint lists, read from csp/evaluator.rs (checked against the evaluator's below)
// ---------------------------------------------------------------------------------------------

function rustList(name) {
  const m = CSP_RS.match(new RegExp(`const ${name}: &\\[[^\\]]+\\] = &\\[([\\s\\S]*?)\\n\\];`));
  assert.ok(m, `${name} not found in crates/compiler/src/csp/`);
  return m[1];
}
const rustUrls = (name) => [...rustList(name).matchAll(/\("([^"]+)", "([^"]+)"\)/g)].map((x) => `//${x[1]}${x[2]}`);
const rustStrings = (name) => [...rustList(name).matchAll(/"([^"]+)"/g)].map((x) => x[1]);

const EG_JSONP = rustUrls("JSONP_URLS");
const EG_ANGULAR = rustUrls("ANGULAR_URLS");
/** Hosts edgeguard's W021 knows. */
const SUBSET_HOSTS = new Set([...EG_JSONP, ...EG_ANGULAR].map((u) => new URL(`https:${u}`).hostname));

// ---------------------------------------------------------------------------------------------
// The deliberate differences
// ---------------------------------------------------------------------------------------------

const is = (f, type, severity) => f.type === type && f.severity === severity;
const REMOVED_DIRECTIVES = ["reflected-xss", "referrer", "disown-opener"];
/** The host the evaluator names in "X is known to host …". */
const namedHost = (f) => f.description.split(" ")[0];
/** The first `backticked` value of an edgeguard message. */
const quoted = (d) => d.message.match(/`([^`]+)`/)?.[1] ?? "";

/**
 * `evaluator(f)` claims an evaluator finding; `edgeguard(d, claimed)` claims an edgeguard
 * diagnostic, given what the same entry claimed on the evaluator's side. With `pair`, every
 * claimed evaluator finding must have its edgeguard counterpart (an error), or the test fails.
 */
const ALLOWED = [
  {
    id: "self-note",
    why: "SCRIPT_ALLOWLIST_BYPASS medium_maybe on 'self' is a reminder, not a finding: it fires on nearly every policy, helmet's default included",
    evaluator: (f) => is(f, Type.SCRIPT_ALLOWLIST_BYPASS, Severity.MEDIUM_MAYBE) && f.value === "'self'",
  },
  {
    id: "no-bypass-note",
    why: "SCRIPT_ALLOWLIST_BYPASS medium_maybe \"No bypass found\" on every other allowlisted host is a reminder too; W021 reports only known bypasses (high)",
    evaluator: (f) => is(f, Type.SCRIPT_ALLOWLIST_BYPASS, Severity.MEDIUM_MAYBE) && f.value !== "'self'",
  },
  {
    id: "bypass-host-subset",
    why: "W021 knows a subset of the evaluator's JSONP/Angular endpoint lists (the hosts policies really allowlist); every entry it has is on the evaluator's list, in order",
    evaluator: (f) => is(f, Type.SCRIPT_ALLOWLIST_BYPASS, Severity.HIGH) && !SUBSET_HOSTS.has(namedHost(f)),
  },
  {
    id: "flash",
    why: "Flash is gone from every browser: a Flash-hosting host in object-src is W023 (medium_maybe, \"restrict object-src to 'none'\"), not a high finding",
    evaluator: (f) => is(f, Type.OBJECT_ALLOWLIST_BYPASS, Severity.HIGH) && f.description.includes("Flash"),
    edgeguard: (d, claimed) => d.code === "W023" && claimed.some((f) => quoted(d) === f.value),
  },
  {
    id: "nonce-charset-error",
    why: "a nonce that is not base64 (NONCE_CHARSET, and the INVALID_KEYWORD that comes with it) is error E032 here, and is left out of the header",
    pair: true,
    evaluator: (f) =>
      f.type === Type.NONCE_CHARSET || (f.type === Type.INVALID_KEYWORD && /^'nonce-/i.test(f.value ?? "")),
    edgeguard: (d, claimed) => d.code === "E032" && claimed.some((f) => quoted(d) === f.value),
  },
  {
    id: "unknown-directive-error",
    why: "an unknown directive (UNKNOWN_DIRECTIVE, syntax) is error E030 here, with \"did you mean\"",
    pair: true,
    evaluator: (f) => f.type === Type.UNKNOWN_DIRECTIVE,
    edgeguard: (d, claimed) => d.code === "E030" && claimed.some((f) => quoted(d) === f.directive),
  },
  {
    id: "invalid-keyword-error",
    why: "an unquoted or misspelt keyword (INVALID_KEYWORD, syntax) is error E031 here, with the fix",
    pair: true,
    evaluator: (f) => f.type === Type.INVALID_KEYWORD && !/^'nonce-/i.test(f.value ?? ""),
    edgeguard: (d, claimed) => d.code === "E031" && claimed.some((f) => quoted(d) === f.value),
  },
  {
    id: "removed-directive-error",
    why: "reflected-xss, referrer and disown-opener (DEPRECATED_DIRECTIVE, info) are error E030 here, pointing at the header that replaced them",
    pair: true,
    evaluator: (f) => f.type === Type.DEPRECATED_DIRECTIVE && REMOVED_DIRECTIVES.includes(f.directive),
    edgeguard: (d, claimed) => d.code === "E030" && claimed.some((f) => quoted(d) === f.directive),
  },
  {
    id: "report-directive-advice",
    why: "W026 (report-uri/report-to written as directives; use `report_to`) is edgeguard's own advice, not an evaluator check",
    edgeguard: (d) => d.code === "W026",
  },
  {
    id: "http-scheme-case",
    why: "W016 matches http:// in any letter case: `HTTP://host` loads over plain http too, the evaluator only sees lowercase",
    edgeguard: (d) => d.code === "W016" && /^http:\/\//i.test(quoted(d)) && !quoted(d).startsWith("http://"),
  },
];

// ---------------------------------------------------------------------------------------------
// Running both sides
// ---------------------------------------------------------------------------------------------

const severityName = (s) => Severity[s].toLowerCase();
const SEVERITIES = new Set(Object.keys(Severity).filter((k) => Number.isNaN(Number(k))).map((k) => k.toLowerCase()));
const describeFinding = (f) =>
  `${Type[f.type]}/${severityName(f.severity)} [${f.directive}${f.value ? ` ${f.value}` : ""}] ${f.description}`;
const describeDiag = (d) => `${d.code} ${d.message}`;

function evaluatorFindings(csp) {
  // Severity NONE findings are the evaluator's IGNORED notes ("'unsafe-inline' is ignored if a
  // nonce is present"): explanations of the effective policy, not findings.
  return new CspEvaluator(new CspParser(csp).csp).evaluate().filter((f) => f.severity !== Severity.NONE);
}

/** The CSP as an edgeguard policy: each directive a TOML array of its sources. */
function policyOf(csp) {
  const lines = ["version = 1", "", "[origins.a]", 'url = "https://a.example"', "", "[csp.directives]"];
  const seen = new Set();
  for (const part of csp.split(";")) {
    const [name, ...values] = part.trim().split(/\s+/).filter(Boolean);
    if (!name) continue;
    assert.ok(!seen.has(name.toLowerCase()), `corpus CSPs must not repeat a directive: ${name}`);
    seen.add(name.toLowerCase());
    const value = values.length
      ? `[${values.map((v) => JSON.stringify(v)).join(", ")}]`
      : FLAGS.has(name.toLowerCase())
        ? "true"
        : "[]";
    lines.push(`${JSON.stringify(name)} = ${value}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * A strict entry's edgeguard policy: a fixture with `strict = "nonce"` put under its `[csp]`, or
 * the policy written out in the entry.
 */
function strictPolicyOf(strict) {
  if (strict.toml) return strict.toml;
  const source = fs.readFileSync(path.join(ROOT, strict.policy), "utf8");
  assert.match(source, /^\[csp\]$/m, `${strict.policy} has a [csp] table`);
  return source.replace(/^\[csp\]$/m, '[csp]\nstrict = "nonce"');
}

/** The nonce edgeguard's lints use (`LINT_NONCE`, crates/compiler/src/csp/mod.rs); strict corpus entries carry it too. */
const LINT_NONCE = CSP_RS.match(/pub const LINT_NONCE: &str = "([^"]+)";/)?.[1];

/** The strict policy `edgeguard explain` shows for an HTML page, `{nonce}` filled in. */
function strictRendering(file, url) {
  const run = spawnSync(BIN, ["explain", file, "--request", `GET ${url}`], { encoding: "utf8" });
  assert.equal(run.status, 0, `edgeguard explain ${file} exited ${run.status}:\n${run.stderr}`);
  const explained = JSON.parse(run.stdout);
  assert.ok(explained.csp_nonce, `${file}: no csp_nonce for GET ${url}`);
  assert.equal(explained.response_headers[explained.csp_nonce.header], explained.csp_nonce.value);
  return explained.csp_nonce.value.replaceAll("{nonce}", LINT_NONCE);
}

function check(file) {
  const run = spawnSync(BIN, ["check", file, "--format", "json"], { encoding: "utf8" });
  assert.ok(run.status === 0 || run.status === 1, `edgeguard check ${file} exited ${run.status}:\n${run.stderr}`);
  return JSON.parse(run.stdout).diagnostics.filter((d) => CSP_CODE.test(d.code));
}

/** The (type/severity) key of a mapped edgeguard warning, checked against its code. */
function edgeguardKey(d) {
  const m = d.message.match(/\(CSP Evaluator: ([A-Z_]+), ([a-z_]+)\)$/);
  assert.ok(m, `${d.code} does not name its CSP Evaluator finding: ${d.message}`);
  assert.equal(m[1], CODES[d.code], `${d.code} should report ${CODES[d.code]}: ${d.message}`);
  assert.ok(SEVERITIES.has(m[2]), `unknown severity in ${d.message}`);
  return `${m[1]}/${m[2]}`;
}

const used = new Map(ALLOWED.map((r) => [r.id, new Set()]));

/** Compare one edgeguard run with the evaluator's findings; throws with both sides on a mismatch. */
function compare(label, findings, diags) {
  const evaluatorLeft = [];
  const claimedBy = new Map(ALLOWED.map((r) => [r.id, []]));
  for (const f of findings) {
    const rule = ALLOWED.find((r) => r.evaluator?.(f));
    if (rule) {
      claimedBy.get(rule.id).push(f);
      used.get(rule.id).add(label);
    } else {
      evaluatorLeft.push(f);
    }
  }
  const edgeguardLeft = [];
  for (const d of diags) {
    const rule = ALLOWED.find((r) => r.edgeguard?.(d, claimedBy.get(r.id)));
    if (rule) used.get(rule.id).add(label);
    else edgeguardLeft.push(d);
  }
  for (const rule of ALLOWED.filter((r) => r.pair)) {
    for (const f of claimedBy.get(rule.id)) {
      assert.ok(
        diags.some((d) => rule.edgeguard(d, [f])),
        `${label}: "${describeFinding(f)}" is allowed as an edgeguard error (${rule.id}), but edgeguard reported none:\n` +
          diags.map(describeDiag).join("\n"),
      );
    }
  }
  const unexplained = edgeguardLeft.filter((d) => !(d.code in CODES));
  const count = (keys) => keys.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map());
  const want = count(evaluatorLeft.map((f) => `${Type[f.type]}/${severityName(f.severity)}`));
  const got = count(edgeguardLeft.filter((d) => d.code in CODES).map(edgeguardKey));
  const keys = [...new Set([...want.keys(), ...got.keys()])].sort();
  const differ = keys.filter((k) => want.get(k) !== got.get(k));
  if (differ.length || unexplained.length) {
    assert.fail(
      `${label}: edgeguard and CSP Evaluator disagree on ${[...differ, ...unexplained.map((d) => d.code)].join(", ")}\n` +
        `  evaluator: ${evaluatorLeft.map(describeFinding).join("\n             ") || "(nothing)"}\n` +
        `  edgeguard: ${edgeguardLeft.map(describeDiag).join("\n             ") || "(nothing)"}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

let tmp;

before(() => {
  // A no-op when the binary is fresh; rebuilds it after the compiler changes.
  const build = spawnSync("cargo", ["build", "-q", "-p", "edgeguard-cli"], { cwd: ROOT, stdio: "inherit" });
  assert.equal(build.status, 0, "cargo build -p edgeguard-cli failed");
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeguard-csp-parity-"));
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("the corpus has at least 40 distinct policies", () => {
  assert.ok(corpus.length >= 40, `${corpus.length} policies`);
  assert.equal(new Set(corpus.map((e) => e.id)).size, corpus.length, "ids are unique");
});

test("W021's endpoint lists are the evaluator's, in its order", () => {
  const normalize = (u) => u.replace(/^(\/\/[^/]+)$/, "$1/");
  for (const [name, ours, theirs] of [
    ["JSONP_URLS", EG_JSONP, jsonp.URLS],
    ["ANGULAR_URLS", EG_ANGULAR, angular.URLS],
  ]) {
    const index = ours.map((u) => theirs.map(normalize).indexOf(normalize(u)));
    const missing = ours.filter((_, i) => index[i] < 0);
    assert.deepEqual(missing, [], `${name} entries that are on no evaluator list`);
    assert.ok(
      index.every((v, i) => i === 0 || v > index[i - 1]),
      `${name} must keep the evaluator's order (the first match decides)`,
    );
  }
  assert.deepEqual(rustStrings("JSONP_NEEDS_EVAL").sort(), [...jsonp.NEEDS_EVAL].sort());
});

for (const entry of corpus) {
  test(`${entry.id}: ${entry.csp}`, () => {
    const findings = evaluatorFindings(entry.csp);
    const file = path.join(tmp, `${entry.id}.toml`);
    fs.writeFileSync(file, policyOf(entry.csp));
    compare(entry.id, findings, check(file));
    if (entry.policy) {
      // The same CSP straight from the fixture it was rendered from.
      compare(`${entry.id} (${entry.policy})`, findings, check(path.join(ROOT, entry.policy)));
    }
    if (entry.strict) {
      // A `strict = "nonce"` rendering: edgeguard renders exactly this CSP for HTML pages, the
      // evaluator finds nothing high in it, and `check` (which lints the strict policy in
      // enforce mode) agrees with the evaluator.
      const strictFile = path.join(tmp, `${entry.id}.strict.toml`);
      fs.writeFileSync(strictFile, strictPolicyOf(entry.strict));
      assert.equal(strictRendering(strictFile, entry.strict.url ?? "https://example.com/"), entry.csp, "the corpus CSP is what edgeguard renders");
      const high = findings.filter((f) => f.severity === Severity.HIGH);
      assert.deepEqual(high.map(describeFinding), [], "a strict rendering has no HIGH finding");
      compare(`${entry.id} (strict)`, findings, check(strictFile));
    }
  });
}

test("strict renderings are in the corpus", () => {
  assert.match(LINT_NONCE ?? "", /^[A-Za-z0-9+/]{22}==$/, "LINT_NONCE in csp/mod.rs is a 24-character base64 nonce");
  const strict = corpus.filter((e) => e.strict);
  assert.ok(strict.length >= 5, `${strict.length} strict renderings`);
  assert.ok(strict.some((e) => e.strict.policy === "fixtures/quotekit.toml"), "QuoteKit's strict rendering");
});

test("every allowed difference is needed by the corpus and documented", () => {
  const unused = ALLOWED.filter((r) => used.get(r.id).size === 0).map((r) => r.id);
  assert.deepEqual(unused, [], "allowlist entries no corpus policy needs: remove them or add a policy");
  const docs = fs.readFileSync(path.join(ROOT, "docs/diagnostics.md"), "utf8");
  const section = docs.split(/^## Parity with CSP Evaluator$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, "docs/diagnostics.md has a \"## Parity with CSP Evaluator\" section");
  for (const r of ALLOWED) assert.ok(section.includes(`\`${r.id}\``), `docs/diagnostics.md lists \`${r.id}\``);
});
