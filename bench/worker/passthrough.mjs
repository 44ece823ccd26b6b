// The floor: a JS worker that fetches the origin and returns its response, untouched.
// What every worker in front of an origin pays (workerd's request path, one outbound fetch);
// edgeguard's target is ≥ 0.8× its throughput. ORIGIN is a text binding (passthrough.capnp).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN + url.pathname + url.search, request);
  },
};
