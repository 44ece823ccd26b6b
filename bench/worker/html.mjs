// Strict CSP's cost on HTML responses (docs/benchmarks.md, "Strict CSP"): the same pages
// through a JS pass-through worker, edgeguard with the QuoteKit policy as written, and
// edgeguard with `[csp] strict = "nonce"` (every script, style and preload gets the response's
// nonce in workerd's HTMLRewriter), each run by `workerd serve` in front of a node origin on
// 127.0.0.1. Run by scripts/bench-html.sh, which builds the two edgeguard workers:
//
//   node bench/worker/html.mjs WORKERD LEGACY_DIR STRICT_DIR [ROUNDS] [REQUESTS]
//
// Pages (Next.js-shaped: head preloads, stylesheet, script chunks, then body markup with a
// `self.__next_f.push` script every ~2 KiB): 50 KiB and 2 MiB, sent in 16 KiB writes.
// For each page and variant, ROUNDS interleaved rounds of REQUESTS sequential GETs on one
// keep-alive connection measure time to first byte, time to last byte and workerd's CPU time
// per response; a streamed page (first 16 KiB at once, then 8 writes 20 ms apart) measures
// time to first byte when the origin is slow to finish. Prints a JSON line per measurement
// and a Markdown summary (medians; added = variant − pass-through).
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, cpSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [workerd, legacyDir, strictDir, roundsArg, requestsArg] = process.argv.slice(2);
if (!workerd || !legacyDir || !strictDir) {
  console.error("usage: node bench/worker/html.mjs WORKERD LEGACY_DIR STRICT_DIR [ROUNDS] [REQUESTS]");
  process.exit(2);
}
const ROUNDS = Number(roundsArg ?? 5);
const REQUESTS = Number(requestsArg ?? 200);
const here = resolve(new URL(".", import.meta.url).pathname);

function page(bytes) {
  const head =
    '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/><title>QuoteKit</title>' +
    '<link rel="stylesheet" href="/_next/static/css/app.css" data-precedence="next"/>' +
    '<link rel="preload" as="script" fetchPriority="low" href="/_next/static/chunks/webpack.js"/>' +
    '<script src="/_next/static/chunks/main-app.js" async=""></script>' +
    '<script src="/_next/static/chunks/app/layout.js" async=""></script>' +
    "<style>body{margin:0}</style></head><body>";
  const parts = [head];
  let size = head.length;
  for (let i = 0; size < bytes - 200; i += 1) {
    const block =
      `<div class="quote-row" data-id="${i}"><span class="name">Customer ${i}</span><span class="total">$${(i * 37) % 1000}.00</span>` +
      `<a href="/quotes/${i}">Open</a></div>`.repeat(12) +
      `<script>self.__next_f.push([1,"${"x".repeat(200)}${i}"])</script>`;
    parts.push(block);
    size += block.length;
  }
  parts.push("<script>self.__next_f.push([2,null])</script></body></html>");
  return Buffer.from(parts.join(""));
}

const PAGES = { "/p50k": page(50 * 1024), "/p2m": page(2 * 1024 * 1024) };
const CHUNK = 16 * 1024;

function startOrigin() {
  const server = http.createServer(async (req, res) => {
    const stream = req.url === "/stream";
    const body = stream ? PAGES["/p50k"] : PAGES[req.url];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "x-powered-by": "Next.js", ...(stream ? {} : { "content-length": body.length }) });
    let at = 0;
    if (stream) {
      res.write(body.subarray(0, CHUNK));
      at = CHUNK;
      const step = Math.ceil((body.length - at) / 8);
      for (let i = 0; i < 8; i += 1) {
        await new Promise((r) => setTimeout(r, 20));
        res.write(body.subarray(at, at + step));
        at += step;
      }
      res.end();
      return;
    }
    while (at < body.length) {
      const ok = res.write(body.subarray(at, at + CHUNK));
      at += CHUNK;
      if (!ok) await new Promise((r) => res.once("drain", r));
    }
    res.end();
  });
  server.keepAliveTimeout = 120_000;
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

function capnp(name, port, modules, originUrl) {
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "w", worker = .w), (name = "loopback", network = (allow = ["public", "private", "local"])) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", service = "w", http = (forwardedProtoHeader = "x-forwarded-proto")) ],
);
const w :Workerd.Worker = (
  modules = [ ${modules} ],
  bindings = [ (name = "ORIGIN", text = "${originUrl}"), (name = "EDGE_ORIGINS", text = "*=${originUrl}") ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
`;
}

const edgeModules = (dir) =>
  `(name = "index.mjs", esModule = embed "${dir}/index.mjs"), (name = "shell.mjs", esModule = embed "${dir}/shell.mjs"), (name = "engine.js", esModule = embed "${dir}/engine.js"), (name = "engine_bg.wasm", wasm = embed "${dir}/engine_bg.wasm"), (name = "policy.egb", data = embed "${dir}/policy.egb")`;

async function freePort() {
  const s = http.createServer();
  await new Promise((ok) => s.listen(0, "127.0.0.1", ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

async function waitUp(port) {
  for (let i = 0; i < 200; i += 1) {
    try {
      await get(port, "/p50k", new http.Agent());
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}`);
}

let client = 0;

/** One GET (from a new client address each time, so QuoteKit's per-IP page limit never
 * refuses): time to first byte and to last byte (ms), and the body. */
function get(port, path, agent) {
  client += 1;
  const ip = `10.${(client >> 16) & 255}.${(client >> 8) & 255}.${client & 255}`;
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    let first = null;
    const chunks = [];
    const req = http.get(
      { host: "127.0.0.1", port, path, agent, headers: { host: "lawnquote.online", "x-forwarded-proto": "https", "cf-connecting-ip": ip, "accept-encoding": "identity" } },
      (res) => {
        res.on("data", (c) => {
          first ??= process.hrtime.bigint();
          chunks.push(c);
        });
        res.on("end", () => {
          const end = process.hrtime.bigint();
          ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ttfb: Number((first ?? end) - t0) / 1e6, total: Number(end - t0) / 1e6 });
        });
        res.on("error", fail);
      },
    );
    req.on("error", fail);
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

const origin = await startOrigin();
const originUrl = `http://127.0.0.1:${origin.address().port}`;
const tmp = mkdtempSync(join(tmpdir(), "eg-html-"));
const children = [];
process.on("exit", () => {
  for (const c of children) c.kill();
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

cpSync(join(here, "passthrough.mjs"), join(tmp, "passthrough.mjs"));
cpSync(resolve(legacyDir), join(tmp, "legacy"), { recursive: true });
cpSync(resolve(strictDir), join(tmp, "strict"), { recursive: true });
const variants = [
  { name: "passthrough", modules: `(name = "passthrough.mjs", esModule = embed "passthrough.mjs")` },
  { name: "edgeguard", modules: edgeModules("legacy") },
  { name: "edgeguard-strict", modules: edgeModules("strict") },
];
for (const v of variants) {
  v.port = await freePort();
  writeFileSync(join(tmp, `${v.name}.capnp`), capnp(v.name, v.port, v.modules, originUrl));
  const child = spawn(workerd, ["serve", join(tmp, `${v.name}.capnp`)], { stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  v.pid = child.pid;
}
for (const v of variants) await waitUp(v.port);

// Checks: the strict variant marked every script of the page with the nonce in its CSP; the
// others left the body alone.
for (const [path, bytes] of Object.entries(PAGES)) {
  for (const v of variants) {
    const r = await get(v.port, path, new http.Agent());
    if (r.status !== 200) throw new Error(`${v.name} ${path}: status ${r.status}`);
    const scripts = (r.body.toString().match(/<script/g) ?? []).length;
    if (v.name === "edgeguard-strict") {
      const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(r.headers["content-security-policy"] ?? "")?.[1];
      const marked = r.body.toString().split(`nonce="${nonce}"`).length - 1;
      if (!nonce || marked < scripts) throw new Error(`${path}: strict variant marked ${marked} of ${scripts} scripts (nonce ${nonce})`);
    } else if (!r.body.equals(bytes)) {
      throw new Error(`${v.name} ${path}: body changed`);
    }
  }
}

const results = [];
const HZ = 100; // CLK_TCK
for (const path of [...Object.keys(PAGES), "/stream"]) {
  const per = Object.fromEntries(variants.map((v) => [v.name, { ttfb: [], total: [], cpu: [] }]));
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const v of order) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const n = path === "/stream" ? Math.max(5, Math.floor(REQUESTS / 20)) : path === "/p2m" ? Math.max(10, Math.floor(REQUESTS / 10)) : REQUESTS;
      await get(v.port, path, agent); // warm the connection
      const c0 = cpuTicks(v.pid);
      const ttfb = [];
      const total = [];
      for (let i = 0; i < n; i += 1) {
        const r = await get(v.port, path, agent);
        ttfb.push(r.ttfb);
        total.push(r.total);
      }
      const cpuMs = ((cpuTicks(v.pid) - c0) / HZ) * 1000 / n;
      agent.destroy();
      per[v.name].ttfb.push(median(ttfb));
      per[v.name].total.push(median(total));
      per[v.name].cpu.push(cpuMs);
      console.log(JSON.stringify({ path, round, variant: v.name, requests: n, ttfb_ms: median(ttfb), total_ms: median(total), workerd_cpu_ms: cpuMs }));
    }
  }
  for (const v of variants) {
    results.push({ path, variant: v.name, ttfb: median(per[v.name].ttfb), total: median(per[v.name].total), cpu: median(per[v.name].cpu) });
  }
}

const fmt = (x) => x.toFixed(2);
const bytes = { "/p50k": PAGES["/p50k"].length, "/p2m": PAGES["/p2m"].length, "/stream": PAGES["/p50k"].length };
console.log(`\n| page | variant | TTFB ms | total ms | workerd CPU ms/resp | added total vs pass-through ms | added TTFB ms |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const r of results) {
  const base = results.find((b) => b.path === r.path && b.variant === "passthrough");
  const label = r.path === "/stream" ? `streamed ${Math.round(bytes[r.path] / 1024)} KiB (9 writes, 160 ms)` : `${Math.round(bytes[r.path] / 1024)} KiB`;
  console.log(`| ${label} | ${r.variant} | ${fmt(r.ttfb)} | ${fmt(r.total)} | ${fmt(r.cpu)} | ${r.variant === "passthrough" ? "—" : fmt(r.total - base.total)} | ${r.variant === "passthrough" ? "—" : fmt(r.ttfb - base.ttfb)} |`);
}
process.exit(0);
