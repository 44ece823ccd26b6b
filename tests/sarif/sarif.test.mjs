// `edgeguard check --format sarif` against the SARIF 2.1.0 JSON schema (vendored beside this
// file; README.md says where it comes from), validated with Ajv, and checked result by result
// against `--format json`.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import Ajv from "ajv";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const BIN = path.join(ROOT, "target/debug/edgeguard");
const SCHEMA_FILE = path.join(HERE, "sarif-schema-2.1.0.json");
/** sha256 of the vendored schema, as README.md records it. */
const SCHEMA_SHA256 = "1c49a0f2b60444c71bb14878e21e0d882198eff4c539861b133093ad89ed798c";

const POLICY_WITH_ERRORS = `version = 1

[origins.a]
url = "https://a.example"

[csp.directives]
script-src = ["self", "'unsafe-inline'"]
scirpt-src = ["'self'"]

[[routes]]
path = "/api/**"
limit = "apii"
`;

let validate;
let tmp;

before(() => {
  // A no-op when the binary is fresh.
  const build = spawnSync("cargo", ["build", "-q", "-p", "edgeguard-cli"], { cwd: ROOT, stdio: "inherit" });
  assert.equal(build.status, 0, "cargo build -p edgeguard-cli failed");
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edgeguard-sarif-"));

  const text = fs.readFileSync(SCHEMA_FILE, "utf8");
  assert.equal(createHash("sha256").update(text).digest("hex"), SCHEMA_SHA256, "the vendored schema was changed");
  const schema = JSON.parse(text);
  // The schema says which JSON Schema draft it is written in; Ajv has one class per draft.
  const Validator = {
    "https://json-schema.org/draft/2020-12/schema": Ajv2020,
    "http://json-schema.org/draft-07/schema#": Ajv,
  }[schema.$schema];
  assert.ok(Validator, `no Ajv class for ${schema.$schema}`);
  const ajv = new Validator({ allErrors: true });
  addFormats(ajv);
  validate = ajv.compile(schema);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function check(file, format) {
  return spawnSync(BIN, ["check", file, "--format", format], { cwd: ROOT, encoding: "utf8" });
}

function assertValid(log) {
  const ok = validate(log);
  assert.ok(ok, `not valid SARIF 2.1.0:\n${JSON.stringify(validate.errors, null, 2)}`);
}

/** SARIF from `check FILE --format sarif`, validated, compared with `--format json`. */
function checkSarif(file, expectedStatus) {
  const run = check(file, "sarif");
  assert.equal(run.status, expectedStatus, run.stderr);
  const log = JSON.parse(run.stdout);
  assertValid(log);
  const json = JSON.parse(check(file, "json").stdout);
  assert.match(run.stderr, new RegExp(`${json.errors} errors?, ${json.warnings} warnings?`), "the summary goes to stderr");

  assert.equal(log.version, "2.1.0");
  assert.equal(log.runs.length, 1);
  const [sarifRun] = log.runs;
  assert.equal(sarifRun.tool.driver.name, "edgeguard");
  const rules = sarifRun.tool.driver.rules;
  assert.equal(new Set(rules.map((r) => r.id)).size, rules.length, "one rule per code");
  assert.deepEqual(
    rules.map((r) => r.id).sort(),
    [...new Set(json.diagnostics.map((d) => d.code))].sort(),
    "a rule for every code reported",
  );
  assert.equal(sarifRun.results.length, json.diagnostics.length, "one result per diagnostic");
  sarifRun.results.forEach((r, i) => {
    const d = json.diagnostics[i];
    assert.equal(r.ruleId, d.code);
    assert.equal(rules[r.ruleIndex].id, r.ruleId, "ruleIndex points at the rule");
    assert.equal(r.level, d.severity);
    assert.ok(r.message.text.startsWith(d.message), r.message.text);
    if (d.help) assert.ok(r.message.text.includes(d.help), "the help is in the message");
    const { region, artifactLocation } = r.locations[0].physicalLocation;
    assert.equal(decodeURI(artifactLocation.uri), d.file);
    assert.deepEqual(
      [region.startLine, region.startColumn, region.endLine, region.endColumn],
      [d.line, d.column, d.end_line, d.end_column],
    );
  });
  return log;
}

test("quotekit: warnings only, valid SARIF, exit 0", () => {
  const log = checkSarif("fixtures/quotekit.toml", 0);
  const results = log.runs[0].results;
  assert.ok(results.length > 0 && results.every((r) => r.level === "warning"));
  assert.ok(["W010", "W011", "W021"].every((code) => results.some((r) => r.ruleId === code)));
  assert.equal(results[0].locations[0].physicalLocation.artifactLocation.uri, "fixtures/quotekit.toml");
});

test("a policy with errors: error results, valid SARIF, exit 1", () => {
  const file = path.join(tmp, "policy with errors.toml");
  fs.writeFileSync(file, POLICY_WITH_ERRORS);
  const log = checkSarif(file, 1);
  const results = log.runs[0].results;
  assert.deepEqual(
    results.map((r) => `${r.ruleId}/${r.level}`),
    ["E031/error", "W010/warning", "W014/warning", "E030/error", "E050/error"],
  );
  assert.ok(
    results[0].locations[0].physicalLocation.artifactLocation.uri.endsWith("/policy%20with%20errors.toml"),
    "the file name is percent-encoded in the URI",
  );
});

test("a clean policy: no results, valid SARIF, exit 0", () => {
  const log = checkSarif("fixtures/minimal.toml", 0);
  assert.deepEqual(log.runs[0].results, []);
  assert.deepEqual(log.runs[0].tool.driver.rules, []);
});

test("--deny-warnings fails on warnings with SARIF too", () => {
  const run = spawnSync(BIN, ["check", "fixtures/quotekit.toml", "--format", "sarif", "--deny-warnings"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(run.status, 1);
  assertValid(JSON.parse(run.stdout));
});

test("the schema check is not vacuous", () => {
  const log = JSON.parse(check("fixtures/quotekit.toml", "sarif").stdout);
  log.runs[0].results[0].level = "fatal";
  assert.equal(validate(log), false);
  const noVersion = JSON.parse(check("fixtures/quotekit.toml", "sarif").stdout);
  delete noVersion.version;
  assert.equal(validate(noVersion), false);
  const badRegion = JSON.parse(check("fixtures/quotekit.toml", "sarif").stdout);
  badRegion.runs[0].results[0].locations[0].physicalLocation.region.startLine = 0;
  assert.equal(validate(badRegion), false);
});
