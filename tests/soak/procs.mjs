// Processes shared by the soak's phases (soak.mjs, sweep.mjs): the soak origin, `workerd serve`
// on build/edge-soak with the soak-only entry, the limiter probe, and what /proc says about
// CPU and memory.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

import { ROOT } from "../e2e/harness.mjs";

export const BUILD = path.join(ROOT, "build/edge-soak");
export const WORKERD = path.join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
export const MAX_KEYS = 20_000; // tests/soak/policy.toml [limiter] max_keys

function lines(child, pattern) {
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout.on("data", (c) => {
      seen += c;
      const m = seen.match(pattern);
      if (m) resolve(m);
    });
    child.stderr.on("data", (c) => (seen += c));
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${seen}`)));
  });
}

export async function startOrigin(port, controlPort) {
  const child = spawn(process.execPath, [path.join(ROOT, "tests/soak/origin.mjs"), String(port), String(controlPort)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const m = await lines(child, /listening (\d+) (\d+)/);
  return { child, port: Number(m[1]), control: Number(m[2]) };
}

export function writeConfig(port, originPort) {
  fs.copyFileSync(path.join(ROOT, "tests/soak/entry.mjs"), path.join(BUILD, "entry.mjs"));
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edge),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", service = "edge") ],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "entry.mjs", esModule = embed "entry.mjs"),
    (name = "shell.mjs", esModule = embed "shell.mjs"),
    (name = "engine.js", esModule = embed "engine.js"),
    (name = "engine_bg.wasm", wasm = embed "engine_bg.wasm"),
    (name = "policy.egb", data = embed "policy.egb"),
  ],
  bindings = [ (name = "EDGE_ORIGINS", text = "*=http://127.0.0.1:${originPort}") ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
`;
  const file = path.join(BUILD, "soak.capnp");
  fs.writeFileSync(file, config);
  return file;
}

/** `workerd serve` on edgePort in front of originPort, answering once GET /ready gets through. */
export async function startWorkerd(edgePort, originPort) {
  // The shell logs one JSON line per request: discard stdout, or a full pipe stalls workerd.
  const child = spawn(WORKERD, ["serve", writeConfig(edgePort, originPort)], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (c) => (log = (log + c).slice(-20_000)));
  for (let i = 0; ; i++) {
    const r = await getJson(edgePort, "/ready", { "cf-connecting-ip": "10.255.255.255", host: "soak.test" }, 2000);
    if (r.status) break; // any answer: workerd is up
    if (i > 100) throw new Error(`workerd did not start: ${r.error}\n${log}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { child, log: () => log };
}

/** GET a path on a fresh connection: { status, ...the JSON body's fields }, or { error } when no answer came. */
export function getJson(port, p, headers = {}, timeout = 5000) {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: p, agent: false, headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode, ...JSON.parse(body) });
        } catch {
          resolve({ status: res.statusCode, text: body.slice(0, 200) });
        }
      });
    });
    req.setTimeout(timeout, () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ error: String(err) }));
  });
}

/** The limiter's key count through the soak-only entry (entry.mjs), or null. */
export async function limiterKeys(port) {
  return (await limiterProbe(port)).keys;
}

/** { keys, wasmMb } through the soak-only entry (entry.mjs); nulls when it did not answer. */
export async function limiterProbe(port) {
  const r = await getJson(port, "/__soak/limiter");
  return {
    keys: typeof r.keys === "number" ? r.keys : null,
    wasmMb: typeof r.wasm_memory_bytes === "number" ? r.wasm_memory_bytes / 1048576 : null,
  };
}

export function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

// ── CPU accounting (clock ticks), as scripts/bench-worker.sh does it ──

/** utime + stime of a live process. */
export function procTicks(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").pop().split(" ");
    return Number(f[11]) + Number(f[12]); // fields 14, 15
  } catch {
    return 0;
  }
}

/** This node process's CPU plus that of its children it has waited for (wrk runs). */
export function selfAndReapedTicks() {
  const f = fs.readFileSync("/proc/self/stat", "utf8").split(") ").pop().split(" ");
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
}

/** Nanoseconds all threads of a process spent runnable but waiting for a CPU (schedstat). */
export function runqueueWaitNs(pid) {
  let total = 0;
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[1]);
      } catch {
        // the thread ended
      }
    }
  } catch {
    return null;
  }
  return total;
}

/** The whole machine: busy and idle ticks (all CPUs), and steal. */
export function machineTicks() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
