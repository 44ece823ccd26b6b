// Starts real processes for end-to-end tests — the demo origin (node) and the edge (workerd
// through `wrangler dev`) — on free loopback ports, and stops them afterwards.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

function waitForLine(child, pattern, what, timeoutMs) {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs} ms:\n${seen}`)), timeoutMs);
    const onData = (chunk) => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (c) => (seen += c.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${seen}`));
    });
  });
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await once(child, "exit");
  clearTimeout(timer);
}

/** The demo QuoteKit origin. */
export async function startOrigin(name, port = 0) {
  const child = spawn(process.execPath, [path.join(ROOT, "demo/origin.mjs"), "--port", String(port), "--name", name], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const m = await waitForLine(child, /listening on (http:\/\/127\.0\.0\.1:\d+)/, `origin ${name}`, 10_000);
  return { url: m[1], name, stop: () => stop(child) };
}

/**
 * The edge: `wrangler dev --local` (real workerd) serving a built worker.
 * `main` is the worker entry (build/edge/index.mjs by default; null: the config's), `config`
 * a wrangler config or several (one workerd for all), `vars` worker vars; `cwd` the
 * project wrangler runs in (the repository by default: its wrangler.toml), `env` extra
 * environment for wrangler (PATH, for a run without the Rust toolchain); `persistTo` a local
 * state directory to reuse across starts (kept on stop).
 */
/** wrangler's dev registry (how a worker finds another's Durable Objects by `script_name`) for
 * this test process alone: the machine-wide default would connect an edge to a worker of the
 * same name that another test run, or another checkout, serves at the same time. */
const REGISTRY = mkdtempSync(path.join(tmpdir(), "edgeguard-registry-"));
process.on("exit", () => rmSync(REGISTRY, { recursive: true, force: true }));

export async function startEdge(options = {}) {
  // A port picked free can be taken before wrangler binds it: by another edge starting beside
  // this one (each wrangler also binds ports of its own choosing). Then start again, on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEdgeOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test(String(err?.message))) throw err;
    }
  }
}

async function startEdgeOnce({ protocol = "https", main = "build/edge/index.mjs", vars = {}, config = null, cwd = ROOT, env = {}, persistTo = null } = {}) {
  const port = await freePort();
  const inspector = await freePort();
  // Its own local state unless `persistTo` names one to keep (a restart that must find the
  // Durable Objects' storage of the run before); a fresh one is removed on stop.
  const persist = persistTo ?? mkdtempSync(path.join(tmpdir(), "edgeguard-wrangler-"));
  const args = [
    path.join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    ...(main === null ? [] : [main]),
    "--local",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspector),
    "--local-protocol", protocol,
    "--show-interactive-dev-session=false",
    // Its own local state (Durable Object SQLite files): edges started side by side, or right
    // after one another, would otherwise share .wrangler/state and can fail to start with
    // SQLITE_BUSY while another instance still holds the database.
    "--persist-to", persist,
  ];
  // Several configs run several workers in one workerd (the first is served; the others are
  // reached through its service bindings, in process).
  for (const c of [config].flat()) if (c) args.push("--config", c);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1", WRANGLER_REGISTRY_PATH: REGISTRY, ...env },
  });
  // Everything wrangler prints: the worker's console.log lines on stdout, console.error on stderr.
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk) => (stderr += chunk.toString()));
  try {
    await waitForLine(child, /Ready on/, "wrangler dev", 60_000);
  } catch (err) {
    await stop(child);
    if (persistTo === null) rmSync(persist, { recursive: true, force: true });
    throw err;
  }
  const stopEdge = async () => {
    await stop(child);
    if (persistTo === null) rmSync(persist, { recursive: true, force: true });
  };
  return { url: `${protocol}://127.0.0.1:${port}`, stop: stopEdge, stdout: () => stdout, stderr: () => stderr };
}

/**
 * One HTTP request with full control of headers (Host included, repeated headers as arrays)
 * and the body. Resolves to { status, headers (lowercase, arrays kept), rawHeaders, body }.
 */
export function request(base, method, pathAndQuery, { headers = {}, body = null, timeoutMs = 20_000 } = {}) {
  const url = new URL(base);
  const lib = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: pathAndQuery,
        headers,
        setHost: !Object.keys(headers).some((h) => h.toLowerCase() === "host"),
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const grouped = {};
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i].toLowerCase();
            (grouped[name] ??= []).push(res.rawHeaders[i + 1]);
          }
          resolve({ status: res.statusCode, headers: grouped, body: Buffer.concat(chunks) });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout ${method} ${pathAndQuery}`)));
    req.on("error", reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

/** The single value of a header, failing if it was sent zero or several times. */
export function one(res, name) {
  const values = res.headers[name] ?? [];
  if (values.length !== 1) throw new Error(`expected exactly one ${name}, got ${JSON.stringify(values)}`);
  return values[0];
}

/** The worker's JSON lines among what an edge printed on stdout (its console.log lines). */
export function jsonLines(edge) {
  return edge
    .stdout()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

export function json(res) {
  return JSON.parse(res.body.toString("utf8"));
}
