// The edge of build/edge-test behind an entry that can hand it a request whose body is a stream
// with no Content-Length and no Transfer-Encoding — how an HTTP/2 or HTTP/3 body reaches a worker
// at Cloudflare. Local workerd and wrangler dev speak HTTP/1.1 only, where such a body arrives
// chunked (and gets 411 before it is read); a service binding between two local workers adds
// `transfer-encoding: chunked` too. So the request is built here, in the runtime, and given to
// the edge's own fetch handler, as the runtime gives it an HTTP/2 request.
//
//   GET /__h2/send?method=POST&path=/__echo/x&size=N → {"status", "body", "headers", "request_headers"}
//   anything else → the edge itself
import edge, { EdgeguardLimiter, EdgeguardStats } from "../../build/edge-test/index.mjs";

export { EdgeguardLimiter, EdgeguardStats };

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname !== "/__h2/send") return edge.fetch(request, env, ctx);
    const size = Number(url.searchParams.get("size") ?? 0);
    const chunk = 16 * 1024;
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent >= size) return controller.close();
        const n = Math.min(chunk, size - sent);
        controller.enqueue(new Uint8Array(n).fill(120));
        sent += n;
      },
    });
    const h2 = new Request(`https://app.test${url.searchParams.get("path")}`, {
      method: url.searchParams.get("method") ?? "POST",
      headers: { host: "app.test", "cf-connecting-ip": "198.51.100.120" },
      body,
      duplex: "half",
    });
    const seen = [...h2.headers.keys()];
    const res = await edge.fetch(h2, env, ctx);
    return Response.json({ status: res.status, body: await res.text(), headers: Object.fromEntries(res.headers), request_headers: seen });
  },
};
