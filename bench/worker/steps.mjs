// The step diagnostics (scripts/bench-steps.sh): bench/worker/headers-only.mjs plus the steps of
// edgeguard's request path named in the STEPS binding (comma-separated), one worker per set of
// steps, so that workerd's CPU per request tells what each step costs:
//
//   flatten            every request header read into one string (the shell's `flatten`)
//   decide             the engine's `decide` on that string, and JSON.parse of its step
//   finish             the engine's `finish` for the request, and JSON.parse of its head
//   twice              decide and finish once more per request: their cost with the engine's
//                      code and data warm (what a first call costs beyond it is the cold start
//                      of the engine's path on each request)
//   codec              the string copy into a byte array as wasm-bindgen makes it, and two
//                      TextDecoder.decode calls of the sizes decide and finish answer with
//   log                one 360-byte console.log line, as edgeguard's request line
//   request-in-place   the forwarded request built as new Request(url, {headers: request.headers})
//                      and edited, instead of new Headers(request.headers) + fetch(url, init)
//   response-in-place  the answer built as new Response(response.body, response) and edited,
//                      instead of new Headers(response.headers) + new Response(body, init)
//
// The engine and policy are build/edge's (engine.js, engine_bg.wasm, policy.egb: QuoteKit's).

import { handle } from "./headers-only.mjs";
import { replaceForwarding } from "./quotekit-headers.mjs";
import { initSync, Edge } from "./engine.js";
import wasmModule from "./engine_bg.wasm";
import policy from "./policy.egb";

initSync({ module: wasmModule });

const LINE = '{"ts":"2026-12-07T00:16:05.380Z","level":"info","msg":"request","revision":"295f1ef2f5ab","request_id":"8f00-IAD","method":"GET","host":"lawnquote.online","path":"/dashboard","route":"/**","action":"forward","reason":"ok","status":200,"edge_ms":1,"origin":"blue","lane":"active","origin_ms":2,"limit":"pages","remaining":149,"client_ip":"10.0.0.0"}';
/** What the shell tells `finish` of the benchmark's answer (crates/worker/src/wire.rs, `Sent`). */
const SENT = "200\n1\n2\n\n\n\n1\n\ntext/html; charset=utf-8\n";
const BYTES = new Uint8Array(65536).fill(97);
const DECODER = new TextDecoder("utf-8", { ignoreBOM: true });

let edge = null;
let hooks = null;
let sink = 0;

function engine() {
  if (edge === null) {
    edge = new Edge(12345, new Uint8Array(policy));
    edge.configure("", "", false, false, "");
  }
  return edge;
}

function flatten(request) {
  let flat = request.method + "\n" + request.url + "\n";
  for (const [name, value] of request.headers) flat += name + "\n" + value + "\n";
  return flat;
}

/** The hooks for a STEPS list. A request's own step travels from `before` to `after` (many
 * requests are in flight at once). */
function hooksFor(steps) {
  const on = new Set(String(steps ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  const decide = (flat) => (on.has("decide") ? JSON.parse(engine().decide(flat, "", Date.now())) : null);
  const finish = (step) => {
    if (!on.has("finish") || step === null) return;
    const raw = engine().finish(step.k, SENT, Date.now());
    sink += JSON.parse(raw.slice(0, raw.indexOf("\n"))).o.length;
  };
  return {
    before(request) {
      const flat = on.has("flatten") || on.has("decide") || on.has("codec") ? flatten(request) : "";
      const step = decide(flat);
      if (on.has("twice")) finish(decide(flat));
      if (on.has("codec")) {
        for (let i = 0; i < flat.length && i < BYTES.length; i++) BYTES[i] = flat.charCodeAt(i);
        sink += DECODER.decode(BYTES.subarray(0, 400)).length + DECODER.decode(BYTES.subarray(400, 960)).length;
      }
      return step;
    },
    forward: on.has("request-in-place")
      ? (target, request, ip, host, requestId) => {
          const sent = new Request(target, { method: request.method, headers: request.headers, body: null, redirect: "manual", signal: AbortSignal.timeout(10_000) });
          replaceForwarding(sent.headers, ip, host, requestId);
          return fetch(sent);
        }
      : undefined,
    respond: on.has("response-in-place")
      ? (response) => {
          const answer = new Response(response.body, response);
          return [answer, answer.headers];
        }
      : undefined,
    after(requestId, step) {
      finish(step);
      if (on.has("log")) console.log(LINE + requestId);
    },
  };
}

export default {
  fetch(request, env) {
    hooks ??= hooksFor(env.STEPS);
    return handle(request, env, hooks);
  },
  /** Read by nothing: keeps the sink observable so no step is optimized away. */
  sink: () => sink,
};
