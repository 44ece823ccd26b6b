// The floor under the edge cache's ratio (docs/benchmarks.md, "The edge cache"): a worker that
// does nothing but `caches.default.match` a stored copy (/hit) or `fetch` the origin (/fwd),
// no policy, no headers. Served by bench/worker/cache.mjs with FLOOR=1 in the same runtime.
import { DurableObject } from "cloudflare:workers";

const KEY = "https://app.test/_next/static/chunks/floor.js";

/** The repository's wrangler.toml binds the limiter class; this worker never uses it. */
export class EdgeguardLimiter extends DurableObject {}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/fwd") {
      const r = await fetch(`${env.ORIGIN}/_next/static/chunks/floor.js`);
      return new Response(r.body, r);
    }
    let hit = await caches.default.match(KEY);
    if (!hit) {
      const r = await fetch(`${env.ORIGIN}/_next/static/chunks/floor.js`);
      const body = await r.arrayBuffer();
      await caches.default.put(KEY, new Response(body, { headers: { "content-type": "application/javascript", "cache-control": "public, max-age=3600" } }));
      hit = new Response(body);
    }
    return new Response(hit.body, hit);
  },
};
