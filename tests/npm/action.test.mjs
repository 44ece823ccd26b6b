// The GitHub Action (action.yml) run locally, step by step, as a runner would: each step's
// `run` script in bash with its `env`, its `if`, and the runner's files (GITHUB_PATH,
// GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) — in a git repository with a base branch and a pull
// request's change, installing the npm package from its tarball.
//
// Needs build/npm/edgeguard-<version>.tgz (`make npm-package`); `make npm-test` runs it.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import YAML from "yaml";

import { ROOT } from "../e2e/harness.mjs";

const ACTION = YAML.parse(readFileSync(path.join(ROOT, "action.yml"), "utf8"));
const VERSION = JSON.parse(readFileSync(path.join(ROOT, "npm/package.json"), "utf8")).version;
const TARBALL = path.join(ROOT, `build/npm/edgeguard-${VERSION}.tgz`);
const PATH = [path.dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":");

// ------------------------------------------------------------------ the runner's expressions

/** `${{ … }}` expressions as GitHub evaluates them, for the forms action.yml uses. */
function evaluate(expr, ctx) {
  const tokens = expr.match(/'[^']*'|!=|==|&&|\|\||[!(),.]|[A-Za-z_][\w-]*/g) ?? [];
  let at = 0;
  const peek = () => tokens[at];
  const take = (t) => {
    if (t !== undefined && tokens[at] !== t) throw new Error(`expected ${t} in ${expr}`);
    return tokens[at++];
  };
  const truthy = (v) => v !== "" && v !== undefined && v !== null && v !== false;
  const primary = () => {
    const t = take();
    if (t === "!") return !truthy(primary());
    if (t === "(") {
      const v = or();
      take(")");
      return v;
    }
    if (t.startsWith("'")) return t.slice(1, -1);
    if (peek() === "(") {
      take("(");
      const args = [];
      while (peek() !== ")") {
        args.push(or());
        if (peek() === ",") take(",");
      }
      take(")");
      if (t === "cancelled") return false;
      if (t === "format") return args[0].replace(/\{(\d+)\}/g, (_, i) => args[Number(i) + 1]);
      throw new Error(`function ${t}`);
    }
    let v = ctx[t];
    while (peek() === ".") {
      take(".");
      v = v?.[take()];
    }
    return v ?? "";
  };
  const compare = () => {
    let v = primary();
    while (peek() === "==" || peek() === "!=") {
      const op = take();
      const w = primary();
      v = op === "==" ? String(v) === String(w) : String(v) !== String(w);
    }
    return v;
  };
  const and = () => {
    let v = compare();
    while (peek() === "&&") {
      take();
      const w = compare();
      v = truthy(v) ? w : v;
    }
    return v;
  };
  const or = () => {
    let v = and();
    while (peek() === "||") {
      take();
      const w = and();
      v = truthy(v) ? v : w;
    }
    return v;
  };
  return or();
}

const interpolate = (text, ctx) => String(text).replace(/\$\{\{(.*?)\}\}/g, (_, e) => String(evaluate(e.trim(), ctx)));

/** The whole action: every step in order; what each wrote, annotations included. */
function runAction(repo, inputs, github) {
  const temp = mkdtempSync(path.join(tmpdir(), "edgeguard-runner-"));
  const files = { path: path.join(temp, "path"), summary: path.join(temp, "summary.md") };
  writeFileSync(files.path, "");
  writeFileSync(files.summary, "");
  const given = { ...inputs };
  const ctx = { github, inputs: {}, steps: {} };
  for (const [name, spec] of Object.entries(ACTION.inputs)) {
    ctx.inputs[name] = name in given ? given[name] : interpolate(spec.default ?? "", ctx);
  }
  const log = [];
  for (const step of ACTION.runs.steps) {
    if (step.if && !evaluate(step.if.replace(/^\$\{\{|\}\}$/g, "").trim(), ctx)) {
      if (step.id) ctx.steps[step.id] = { outputs: {}, outcome: "skipped" };
      continue;
    }
    const output = path.join(temp, `output-${step.id ?? log.length}`);
    writeFileSync(output, "");
    const extraPath = readFileSync(files.path, "utf8").split("\n").filter(Boolean).reverse();
    const env = {
      ...process.env,
      PATH: [...extraPath, PATH].join(":"),
      RUNNER_TEMP: temp,
      GITHUB_PATH: files.path,
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: files.summary,
      GITHUB_WORKSPACE: repo,
      NO_COLOR: "1",
    };
    for (const [k, v] of Object.entries(step.env ?? {})) env[k] = interpolate(v, ctx);
    const out = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", step.run], { cwd: repo, env, encoding: "utf8" });
    const outputs = Object.fromEntries(
      readFileSync(output, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    if (step.id) ctx.steps[step.id] = { outputs, outcome: out.status === 0 ? "success" : "failure" };
    log.push({ name: step.name, code: out.status, stdout: out.stdout, stderr: out.stderr, outputs });
  }
  const result = {
    steps: log,
    failed: log.filter((s) => s.code !== 0).map((s) => s.name),
    stdout: log.map((s) => s.stdout).join(""),
    summary: readFileSync(files.summary, "utf8"),
    outputs: Object.fromEntries(Object.entries(ACTION.outputs).map(([k, o]) => [k, interpolate(o.value, ctx)])),
  };
  rmSync(temp, { recursive: true, force: true });
  return result;
}

// ---------------------------------------------------------------------------- the repository

const BASE_POLICY = `version = 1

[app]
name = "shop"
hosts = ["shop.test"]

[https]
hsts = { max_age = "1y", include_subdomains = true }

[headers]
preset = "helmet"

[[routes]]
path = "/admin/**"
block = 404

[origins.app]
url = "https://shop.fly.dev"
`;

const CASES = `[[case]]
name = "admin is blocked"
request = "GET https://shop.test/admin/users"
expect = { status = 404, reason = "blocked" }

[[case]]
name = "pages are forwarded"
request = "GET https://shop.test/"
expect = { action = "forward" }
`;

let repo;

function git(...args) {
  const out = spawnSync("git", args, { cwd: repo, encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout;
}

/** The pull request: `policy` on a branch off main, checked out. */
function pullRequest(name, policy) {
  git("checkout", "-q", "-B", name, "main");
  writeFileSync(path.join(repo, "policy.toml"), policy);
  git("commit", "-qam", name);
}

before(() => {
  assert.ok(existsSync(TARBALL), `${TARBALL} is missing: run \`make npm-package\``);
  repo = mkdtempSync(path.join(tmpdir(), "edgeguard-action-"));
  git("init", "-q", "-b", "main");
  writeFileSync(path.join(repo, "policy.toml"), BASE_POLICY);
  writeFileSync(path.join(repo, "policy.cases.toml"), CASES);
  git("add", ".");
  git("commit", "-qm", "base");
  // What actions/checkout leaves for a pull request's base: the branch under origin/.
  git("update-ref", "refs/remotes/origin/main", "main");
});

after(() => rmSync(repo, { recursive: true, force: true }));

const inputs = (extra = {}) => ({ policy: "policy.toml", cases: "policy.cases.toml", edgeguard: TARBALL, ...extra });
const PR = { base_ref: "main" };

test("a change that weakens the policy fails the job, with the verdict and annotations", () => {
  pullRequest("weaken", BASE_POLICY.replace("include_subdomains = true", "include_subdomains = false"));
  const r = runAction(repo, inputs(), PR);
  assert.deepEqual(r.failed, ["Verdict"], JSON.stringify(r.steps, null, 1));
  assert.equal(r.outputs.weakened, "1");
  assert.match(r.summary, /1 weakened/);
  assert.match(r.summary, /\| \*\*weakened\*\* \| https \| `hsts` \|/);
  assert.match(r.stdout, /^::(warning|error) file=policy\.toml,line=\d+/m, "the diff's annotation on the changed line");
  assert.match(r.steps.at(-1).stdout, /::error file=policy\.toml::edgeguard: diff failed \(/);
  // With fail-on none the same change passes (and still reports).
  const lenient = runAction(repo, inputs({ "fail-on": "none" }), PR);
  assert.deepEqual(lenient.failed, []);
  assert.equal(lenient.outputs.weakened, "1");
});

test("a change that strengthens the policy passes and builds the worker", () => {
  pullRequest("strengthen", BASE_POLICY.replace('[[routes]]\npath = "/admin/**"', '[[routes]]\npath = "/debug/**"\nblock = 404\n\n[[routes]]\npath = "/admin/**"'));
  const r = runAction(repo, inputs({ build: "edge" }), PR);
  assert.deepEqual(r.failed, [], JSON.stringify(r.steps, null, 1));
  assert.equal(r.outputs.weakened, "0");
  assert.match(r.outputs.revision, /^[0-9a-f]{64}$/);
  assert.equal(JSON.parse(readFileSync(path.join(repo, "edge/edgeguard.json"), "utf8")).policy.revision, r.outputs.revision);
  assert.match(r.stdout, /2 passed, 0 failed/);
  rmSync(path.join(repo, "edge"), { recursive: true, force: true });
});

test("a broken policy and a failing case are annotated on their lines and fail the job", () => {
  pullRequest("break", BASE_POLICY.replace('block = 404', 'block = 404\nmethods = ["FETCH"]').replace("[[routes]]\npath = \"/admin/**\"", "[[routes]]\npath = \"/admin/**\"\n"));
  const r = runAction(repo, inputs(), PR);
  // Every step ran to its end; the verdict names what failed: the check (and the cases, which
  // need a policy that compiles). The diff has no verdict without a compiling policy.
  assert.deepEqual(r.failed, ["Verdict"], JSON.stringify(r.steps, null, 1));
  assert.match(r.steps.at(-1).stdout, /edgeguard: check failed, test failed \(/);
  assert.match(r.summary, /does not compile, so there is no verdict/);
  assert.match(r.stdout, /^::error file=policy\.toml,line=\d+,col=\d+.*E\d{3}/m, r.stdout);
  // A policy that no longer blocks /admin: its case fails, annotated on the case file.
  pullRequest("unblock", BASE_POLICY.replace('[[routes]]\npath = "/admin/**"\nblock = 404\n', ""));
  const u = runAction(repo, inputs(), PR);
  assert.deepEqual(u.failed, ["Verdict"]);
  assert.match(u.stdout, /^::error file=policy\.cases\.toml,line=\d+/m, u.stdout);
  assert.match(u.steps.at(-1).stdout, /test failed, diff failed/);
});

test("a change that fixes a broken base policy passes", () => {
  git("checkout", "-q", "main");
  writeFileSync(path.join(repo, "policy.toml"), BASE_POLICY.replace("block = 404", "block = 404\nmethods = [\"FETCH\"]"));
  git("commit", "-qam", "break main");
  git("update-ref", "refs/remotes/origin/main", "main");
  pullRequest("fix", BASE_POLICY);
  const r = runAction(repo, inputs(), PR);
  assert.deepEqual(r.failed, [], JSON.stringify(r.steps, null, 1));
  assert.equal(r.outputs.weakened, "");
  assert.match(r.steps.at(-1).stdout, /every step passed/);
  git("checkout", "-q", "main");
  git("reset", "-q", "--hard", "HEAD~1");
  git("update-ref", "refs/remotes/origin/main", "main");
});

test("outside a pull request there is no diff; deny-warnings makes warnings fail", () => {
  git("checkout", "-q", "main");
  const push = runAction(repo, inputs(), {});
  assert.deepEqual(push.failed, [], JSON.stringify(push.steps, null, 1));
  assert.equal(push.outputs.weakened, "");
  assert.ok(!push.steps.some((s) => s.name === "Diff against the base"));
  // A short HSTS max-age is a warning: with deny-warnings it fails the check.
  pullRequest("short-hsts", BASE_POLICY.replace('max_age = "1y"', 'max_age = "1d"'));
  assert.deepEqual(runAction(repo, inputs(), {}).failed, []);
  const strict = runAction(repo, inputs({ "deny-warnings": "true" }), {});
  assert.deepEqual(strict.failed, ["Verdict"]);
  assert.match(strict.stdout, /^::warning file=policy\.toml/m);
});

test("the action installs this version by default", () => {
  assert.equal(ACTION.inputs.edgeguard.default, VERSION);
});
