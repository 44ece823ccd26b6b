// edgeguard as a team adopting it uses it: in a project outside this repository, with no
// cargo, rustc or wasm-bindgen on PATH. Two policies built by (1) the native CLI binary on its
// own (the crate itself is packaged and build-checked by `make publish-dry-run`) and (2) the npm
// package installed from its tarball into a fresh npm
// project, offline: the engine bytes are identical, the bundles differ, `wrangler deploy
// --dry-run` accepts each worker, and `wrangler dev` serves each policy — a route blocked by one
// is answered 404 at the edge, the other forwards it to the origin.
//
// Needs target/debug/edgeguard (`make cli`) and build/npm/edgeguard-<version>.tgz
// (`make npm-package`); `make npm-test` runs it.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ROOT, json, one, request, startEdge, startOrigin } from "../e2e/harness.mjs";

const VERSION = JSON.parse(readFileSync(path.join(ROOT, "npm/package.json"), "utf8")).version;
const TARBALL = path.join(ROOT, `build/npm/edgeguard-${VERSION}.tgz`);
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
// Node's own directory and the system's: no ~/.cargo/bin, so no cargo, rustc or wasm-bindgen.
const PATH = [path.dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":");
const ENV = { ...process.env, PATH, NO_COLOR: "1", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

// Two policies that differ in one route: /private/** is blocked by the first only.
const POLICY = (block) => `version = 1
[app]
name = "outside"
hosts = ["shop.test"]

[client_ip]
from = "cf-connecting-ip"

[headers]
preset = "helmet"
${block ? '\n[[routes]]\npath = "/private/**"\nblock = 404\n' : ""}
[origins.app]
url = "https://shop.fly.dev"
`;

function sh(cmd, args, cwd) {
  const out = spawnSync(cmd, args, { cwd, env: ENV, encoding: "utf8" });
  if (out.error) throw out.error;
  assert.equal(out.status, 0, `${cmd} ${args.join(" ")}:\n${out.stdout}\n${out.stderr}`);
  return out.stdout + out.stderr;
}

/** A project dir with the two policies and a wrangler.toml per worker. */
function project(name) {
  const dir = mkdtempSync(path.join(tmpdir(), `edgeguard-${name}-`));
  writeFileSync(path.join(dir, "blocking.toml"), POLICY(true));
  writeFileSync(path.join(dir, "open.toml"), POLICY(false));
  return dir;
}

/** `wrangler deploy --dry-run` for the worker in `dir` (its wrangler.toml): the upload line. */
function dryRun(dir, config) {
  const printed = sh(process.execPath, [WRANGLER, "deploy", "--dry-run", "--config", config, "--outdir", "out-" + path.basename(config, ".toml")], dir);
  const upload = printed.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
  assert.ok(upload, printed);
  return { kib: Number(upload[1]), gzip: Number(upload[2]) };
}

const dirs = [];
let origin;

before(async () => {
  for (const [file, what] of [[TARBALL, "make npm-package"], [path.join(ROOT, "target/debug/edgeguard"), "make cli"], [WRANGLER, "make node-deps"]]) {
    assert.ok(existsSync(file), `${file} is missing: run \`${what}\``);
  }
  for (const tool of ["cargo", "rustc", "wasm-bindgen"]) {
    assert.notEqual(spawnSync("sh", ["-c", `command -v ${tool}`], { env: ENV }).status, 0, `${tool} must not be on PATH here`);
  }
  origin = await startOrigin("outside");
});

after(async () => {
  await origin?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Build both policies with `edgeguard` (argv prefix) in `dir`, check the engine and bundles, deploy dry-run and serve. */
async function buildAndServe(dir, edgeguard) {
  for (const name of ["blocking", "open"]) {
    const printed = sh(edgeguard[0], [...edgeguard.slice(1), "build", `${name}.toml`, "-o", `edge-${name}`, "--wrangler-toml", `wrangler-${name}.toml`], dir);
    assert.match(printed, new RegExp(`wrote edge-${name} — engine ${VERSION.replaceAll(".", "\\.")} `));
    assert.match(printed, new RegExp(`wrangler-${name}\\.toml: created`));
  }
  const files = readdirSync(path.join(dir, "edge-blocking")).sort();
  assert.deepEqual(files, ["edgeguard.json", "engine.js", "engine_bg.wasm", "index.mjs", "policy.egb", "shell.mjs"]);
  for (const f of ["engine_bg.wasm", "engine.js", "shell.mjs"]) {
    assert.deepEqual(readFileSync(path.join(dir, "edge-blocking", f)), readFileSync(path.join(dir, "edge-open", f)), `${f} is the same engine`);
  }
  assert.notDeepEqual(readFileSync(path.join(dir, "edge-blocking/policy.egb")), readFileSync(path.join(dir, "edge-open/policy.egb")));
  for (const name of ["blocking", "open"]) {
    const { gzip } = dryRun(dir, `wrangler-${name}.toml`);
    assert.ok(gzip < 300, `${gzip} KiB gzip`);
  }
  const [blocking, open] = await Promise.all(
    ["blocking", "open"].map((name) =>
      startEdge({ cwd: dir, main: `edge-${name}/index.mjs`, config: path.join(dir, `wrangler-${name}.toml`), env: { PATH }, vars: { EDGE_ORIGINS: `*=${origin.url}` } }),
    ),
  );
  try {
    const headers = { host: "shop.test", "cf-connecting-ip": "198.51.100.7" };
    const refused = await request(blocking.url, "GET", "/private/report", { headers });
    assert.equal(refused.status, 404);
    assert.equal(json(refused).type, "https://edgeguard.dev/problems/blocked");
    const forwarded = await request(open.url, "GET", "/private/report", { headers });
    assert.equal(forwarded.status, 200, forwarded.body.toString());
    assert.equal(one(forwarded, "x-frame-options"), "SAMEORIGIN", "the open policy's headers");
    // Both answer the same page alike.
    for (const edge of [blocking, open]) assert.equal((await request(edge.url, "GET", "/pricing", { headers })).status, 200);
  } finally {
    await Promise.all([blocking.stop(), open.stop()]);
  }
  return readFileSync(path.join(dir, "edge-blocking/engine_bg.wasm"));
}

describe("outside the repository, without Rust", () => {
  let nativeEngine;

  test("the native CLI binary on its own, copied out of the repository", async () => {
    const dir = project("native");
    dirs.push(dir);
    mkdirSync(path.join(dir, "bin"));
    copyFileSync(path.join(ROOT, "target/debug/edgeguard"), path.join(dir, "bin/edgeguard"));
    execFileSync("chmod", ["+x", path.join(dir, "bin/edgeguard")]);
    nativeEngine = await buildAndServe(dir, [path.join(dir, "bin/edgeguard")]);
  });

  test("the npm package, installed from its tarball into a fresh npm project, offline", async () => {
    const dir = project("npm");
    dirs.push(dir);
    sh("npm", ["init", "-y"], dir);
    sh("npm", ["install", "--save-dev", "--offline", "--no-audit", "--no-fund", TARBALL], dir);
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
    assert.ok(manifest.devDependencies.edgeguard, JSON.stringify(manifest));
    const engine = await buildAndServe(dir, ["npx", "--no-install", "edgeguard"]);
    // The engine the npm CLI writes is the package's runtime, and the native CLI's.
    assert.deepEqual(engine, readFileSync(path.join(dir, "node_modules/edgeguard/worker/engine_bg.wasm")));
    if (nativeEngine) assert.deepEqual(engine, nativeEngine);
  });

  test("the npm runtime imported by a hand-written entry, one policy per host", async () => {
    // A team composing the edge with its own code: `import { edgeguard } from "edgeguard/worker"`,
    // here with a policy per host — each call is an edge of its own.
    const dir = mkdtempSync(path.join(tmpdir(), "edgeguard-compose-"));
    dirs.push(dir);
    writeFileSync(path.join(dir, "blocking.toml"), POLICY(true));
    writeFileSync(path.join(dir, "open.toml"), POLICY(false).replace('hosts = ["shop.test"]', 'hosts = ["open.test"]'));
    sh("npm", ["init", "-y"], dir);
    sh("npm", ["install", "--save-dev", "--offline", "--no-audit", "--no-fund", TARBALL], dir);
    sh("npx", ["--no-install", "edgeguard", "compile", "blocking.toml", "-o", "shop.egb"], dir);
    sh("npx", ["--no-install", "edgeguard", "compile", "open.toml", "-o", "open.egb"], dir);
    writeFileSync(
      path.join(dir, "worker.mjs"),
      `import shop from "./shop.egb";
import open from "./open.egb";
import { edgeguard, EdgeguardLimiter } from "edgeguard/worker";
export { EdgeguardLimiter };
const edges = { "shop.test": edgeguard({ policy: shop }), "open.test": edgeguard({ policy: open }) };
export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/own") return new Response("the team's own route");
    // Called again per request by mistake: the same edge, with its state, comes back.
    const edge = url.pathname === "/again" ? edgeguard({ policy: shop }) : edges[request.headers.get("host")];
    return edge.fetch(request, env, ctx);
  },
};
`,
    );
    writeFileSync(path.join(dir, "wrangler.toml"), `name = "compose"\nmain = "worker.mjs"\ncompatibility_date = "2025-09-01"\nrules = [{ type = "Data", globs = ["**/*.egb"], fallthrough = true }]\n`);
    dryRun(dir, "wrangler.toml");
    const edge = await startEdge({ cwd: dir, main: "worker.mjs", config: path.join(dir, "wrangler.toml"), env: { PATH }, vars: { EDGE_ORIGINS: `*=${origin.url}` } });
    try {
      const headers = { host: "shop.test", "cf-connecting-ip": "198.51.100.7" };
      assert.equal((await request(edge.url, "GET", "/private/x", { headers })).status, 404);
      assert.equal((await request(edge.url, "GET", "/private/x", { headers: { ...headers, host: "open.test" } })).status, 200, "the other host's policy");
      assert.equal((await request(edge.url, "GET", "/own", { headers })).body.toString(), "the team's own route");
      assert.equal((await request(edge.url, "GET", "/pricing", { headers })).status, 200);
      const again = await request(edge.url, "GET", "/again", { headers });
      assert.equal(again.status, 200);
      assert.equal(one(again, "x-frame-options"), "SAMEORIGIN");
    } finally {
      await edge.stop();
    }
  });
});
