// Where edgeguard's per-request time goes inside the isolate, measured in node (the same V8
// and the same wasm as in workerd, without workerd's I/O): the shell's steps for the
// benchmark request, one at a time — flatten the headers, the `decide` call, JSON.parse of
// its step, the `finish` call (response phase and observation), JSON.parse of finish's head.
//
//   node bench/worker/decide-in-v8.mjs [build/edge] [CANDIDATE.egb]
//
// With a policy that keeps fleet statistics ([stats] or [slo.*], like QuoteKit's), finish_wasm_call
// includes adding the request to the aggregate, and the shell's flush is taken once `[stats]
// flush` of simulated time has passed; compare with a build of the policy without them.
//
// The directory is one `edgeguard build` wrote (engine.js, engine_bg.wasm, policy.egb). Prints
// one JSON line: microseconds of CPU time (process.cpuUsage: robust to other load on the
// machine) per request for each step. With a candidate bundle, the decide call is also timed
// with that candidate loaded as a shadow policy (`edgeguard build --shadow`), in the same run:
// `decide_shadow_ratio` is what deciding with both costs over deciding with one.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dir = resolve(process.argv[2] ?? "build/edge");
const candidate = process.argv[3] ? readFileSync(resolve(process.argv[3])) : null;
const { initSync, Edge } = await import(pathToFileURL(join(dir, "engine.js")).href);
initSync({ module: new WebAssembly.Module(readFileSync(join(dir, "engine_bg.wasm"))) });
const policy = readFileSync(join(dir, "policy.egb"));

const edge = new Edge(12345, policy);
edge.configure("", "", false, false, "");

const IPS = 8192;
const requests = [];
for (let i = 0; i < IPS; i += 1) {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  // The headers of bench/worker/clients.lua, as workerd hands them to the worker.
  requests.push(
    new Request("https://lawnquote.online/dashboard", {
      headers: {
        host: "lawnquote.online",
        "user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        accept: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        "accept-language": "en-US,en;q=0.9",
        "accept-encoding": "gzip, br",
        cookie: `eg_lane=blue; ph_phc_project_posthog=%7B%22distinct_id%22%3A%22${i}%22%7D; theme=light`,
        referer: "https://lawnquote.online/quotes",
        "upgrade-insecure-requests": "1",
        "x-forwarded-proto": "https",
        "cf-connecting-ip": ip,
        "cf-ray": `8f${i.toString(16).padStart(14, "0")}-IAD`,
        "cf-ipcountry": "US",
        "cf-visitor": '{"scheme":"https"}',
      },
    }),
  );
}

function flatten(request) {
  let out = request.method + "\n" + request.url + "\n";
  for (const [name, value] of request.headers) out += name + "\n" + value + "\n";
  return out;
}

const flat = requests.map((r) => flatten(r));
const wires = [];

function time(label, iterations, fn) {
  for (let i = 0; i < 20_000; i += 1) fn(i); // warm up (JIT, limiter keys present)
  const began = process.cpuUsage();
  for (let i = 0; i < iterations; i += 1) fn(i);
  const used = process.cpuUsage(began);
  return [label, (used.user + used.system) / iterations];
}

const N = 300_000;
// What the shell tells `finish` of the benchmark's answer (crates/worker/src/wire.rs, `Sent`): a
// 200 from the origin, 1 ms at the edge, 2 ms at the origin, an HTML page.
const SENT = "200\n1\n2\n\n\n\n1\n\ntext/html; charset=utf-8\n";
/** The last batch's `finish` answers, for timing the shell's parse of their head. */
let finished = [];
// `[stats]`: finish also adds each request to the isolate's aggregate (docs/operate.md).
const stats = JSON.parse(edge.stats_info()).stats;
let flushBytes = 0;
let now = Date.now();
let current = edge;
function decideOne(i) {
  now += 0.01; // 100 k requests per simulated second, spread over 8192 clients: never limited
  return current.decide(flat[i % IPS], "", now);
}
for (let i = 0; i < IPS; i += 1) {
  const w = decideOne(i);
  wires.push(w);
  edge.finish(JSON.parse(w).k, SENT, now);
}
// decide, then finish the batch: a flight lives from one to the other, as in the shell.
function decideThenFinish(label, batches) {
  const batch = 5_000;
  let decideUs = 0;
  let finishUs = 0;
  for (let round = -4; round < batches; round += 1) { // 4 rounds of warm-up
    const tokens = [];
    finished = [];
    let began = process.cpuUsage();
    for (let i = 0; i < batch; i += 1) tokens.push(JSON.parse(decideOne(i)).k);
    let used = process.cpuUsage(began);
    if (round >= 0) decideUs += used.user + used.system;
    began = process.cpuUsage();
    for (const k of tokens) finished.push(edge.finish(k, SENT, now));
    // The shell's flush, when `[stats] flush` has passed (empty otherwise): timed with finish.
    if (stats) flushBytes = Math.max(flushBytes, edge.stats_take(now).length);
    used = process.cpuUsage(began);
    if (round >= 0) finishUs += used.user + used.system;
  }
  return [
    [label, decideUs / (batch * batches)],
    ["finish_wasm_call", finishUs / (batch * batches)],
  ];
}
const parse = time("json_parse_decision", N, (i) => JSON.parse(wires[i % wires.length]));
const [decideAndParse, finish] = decideThenFinish("decide_and_parse", 60);
const heads = finished.map((raw) => raw.slice(0, raw.indexOf("\n")));
const steps = [
  time("flatten_headers", N, (i) => flatten(requests[i % IPS])),
  ["decide_wasm_call", decideAndParse[1] - parse[1]],
  parse,
  finish,
  time("json_parse_finish_head", N, (i) => JSON.parse(heads[i % heads.length])),
];
// With a shadow candidate: the same decide-and-parse, alternating rounds with and without it, so
// both see the same machine state; the ratio is of the decide call alone.
if (candidate) {
  const shadowed = new Edge(12345, policy);
  shadowed.configure("", "", false, false, "");
  shadowed.load_shadow(candidate);
  const one = [];
  const both = [];
  for (let round = 0; round < 6; round += 1) {
    current = edge;
    one.push(decideThenFinish("decide_and_parse", 10)[0][1] - parse[1]);
    current = shadowed;
    both.push(decideThenFinish("decide_and_parse", 10)[0][1] - parse[1]);
  }
  current = edge;
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  steps.push(["decide_one_policy", median(one)], ["decide_with_shadow", median(both)]);
  const wire = JSON.parse(shadowed.decide(flat[0], "", now));
  if (wire.x) throw new Error(`the candidate disagrees on the benchmark request: ${wire.x}`);
}
const decision = JSON.parse(wires[0]);
if (decision.a !== "forward") throw new Error(`expected a forward decision, got ${wires[0]}`);
const out = Object.fromEntries(steps.map(([k, v]) => [k + "_us", Math.round(v * 1000) / 1000]));
out.decide_total_us = Math.round(steps.slice(0, 5).reduce((sum, [, v]) => sum + v, 0) * 1000) / 1000;
if (candidate) out.decide_shadow_ratio = Math.round((out.decide_with_shadow_us / out.decide_one_policy_us) * 100) / 100;
out.wire_bytes = wires[0].length;
const last = edge.finish(JSON.parse(decideOne(1)).k, SENT, now);
out.finish_head_bytes = last.indexOf("\n");
out.log_line_bytes = last.length - last.indexOf("\n") - 1;
out.fleet_stats = stats;
if (stats) out.largest_flush_bytes = flushBytes;
out.node = process.version;
console.log(JSON.stringify(out));
