// Soak-only worker entry: the production shell unchanged, plus GET /__soak/limiter answering
// the limiter's key count. It wraps `Edge.prototype.decide` to learn the shell's engine, so
// nothing test-only is in shell.mjs or the production build.
import shell from "./shell.mjs";
import { Edge } from "./edgeguard_worker.js";

let edge = null;
const decide = Edge.prototype.decide;
Edge.prototype.decide = function (...args) {
  edge = this;
  return decide.apply(this, args);
};

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__soak/limiter") {
      return Response.json({ keys: edge ? edge.limiter_keys() : 0 });
    }
    return shell.fetch(request, env, ctx);
  },
};
