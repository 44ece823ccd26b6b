// Soak-only worker entry: the production shell unchanged, plus GET /__soak/limiter answering
// the limiter's key count and the size of the engine's wasm linear memory (which only grows: its
// high-water mark). It wraps `Edge.prototype.decide` to learn the shell's engine, so nothing
// test-only is in shell.mjs or the production build.
import policy from "./policy.egb";
import { edgeguard } from "./shell.mjs";
import { Edge, initSync } from "./engine.js";

const shell = edgeguard({ policy });

let edge = null;
const decide = Edge.prototype.decide;
Edge.prototype.decide = function (...args) {
  edge = this;
  return decide.apply(this, args);
};

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__soak/limiter") {
      // shell.mjs has instantiated the module already: initSync() hands back its exports
      const wasmBytes = initSync().memory.buffer.byteLength;
      return Response.json({ keys: edge ? edge.limiter_keys() : 0, wasm_memory_bytes: wasmBytes });
    }
    return shell.fetch(request, env, ctx);
  },
};
