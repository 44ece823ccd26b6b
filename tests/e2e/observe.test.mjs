// [observe] in workerd (issue 5): one JSON log line per request that never carries a secret,
// the metrics endpoint, the CSP report intake, PostHog events sent to a local stand-in of the
// capture API, Analytics Engine writes as far as the local runtime allows, and the latency
// cost of PostHog when its endpoint hangs. Policy: tests/e2e/observe.toml (build/edge-observe).

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { json, jsonLines, one, request, startEdge, startOrigin } from "./harness.mjs";

const MAIN = "build/edge-observe/index.mjs";
const CONFIG = "tests/e2e/wrangler.observe.toml"; // binds EDGEGUARD_ANALYTICS
const HOST = "app.test";
const METRICS_KEY = "e2e-metrics-scrape-key";
const ADMIN_KEY = "e2e-admin-api-key";
const POSTHOG_KEY = "phc_e2e_secret_project_key_9d3c";
const ORIGIN_AUTH = "origin-auth-secret-e2e-5b1f";

let origin;
let capture; // the PostHog stand-in that answers
let edge;

/** A stand-in for PostHog's capture API: records every POST body; `hang` never answers. */
async function captureServer({ hang = false } = {}) {
  const batches = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      batches.push({ method: req.method, url: req.url, body: JSON.parse(text) });
      if (!hang) {
        res.setHeader("content-type", "application/json");
        res.end('{"status":"Ok"}');
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    batches,
    events: () => batches.flatMap((b) => b.body.batch),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function waitFor(what, fn, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function requestLine(e, requestId) {
  return waitFor(`the log line of ${requestId}`, () => {
    const lines = jsonLines(e).filter((l) => l.msg === "request" && l.request_id === requestId);
    assert.ok(lines.length <= 1, `one line per request, got ${lines.length}`);
    return lines[0];
  });
}

function client(ip, extra = {}) {
  return { host: HOST, "cf-connecting-ip": ip, ...extra };
}

async function metrics(e) {
  const res = await request(e.url, "GET", "/__edge/metrics", { headers: client("192.0.2.200", { "x-api-key": METRICS_KEY }) });
  assert.equal(res.status, 200, res.body.toString());
  return res.body.toString();
}

/** The value of one sample (`name{labels}`) in Prometheus text, or 0 when absent. */
function sample(text, series) {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function originRequests() {
  const res = await request(origin.url, "GET", "/__demo/requests");
  return json(res);
}

const report = (doc, directive = "script-src-elem", blocked = "inline") =>
  JSON.stringify({
    "csp-report": { "document-uri": doc, referrer: "", "violated-directive": directive, "effective-directive": directive, "original-policy": "default-src 'self'", disposition: "enforce", "blocked-uri": blocked, "status-code": 200 },
  });

function postReport(e, ip, body, type = "application/csp-report", extra = {}) {
  const headers = client(ip, { "content-type": type, "content-length": String(Buffer.byteLength(body)), ...extra });
  return request(e.url, "POST", "/__edge/csp-report", { headers, body });
}

before(async () => {
  origin = await startOrigin("app");
  capture = await captureServer();
  edge = await startEdge({
    protocol: "http",
    main: MAIN,
    config: CONFIG,
    vars: { EDGE_ORIGINS: `*=${origin.url}`, POSTHOG_KEY, EDGE_POSTHOG_HOST: capture.url, EDGE_ORIGIN_AUTH: ORIGIN_AUTH },
  });
});

after(async () => {
  await Promise.all([edge?.stop(), origin?.stop(), capture?.close()]);
});

describe("PostHog events and metrics for a scripted sequence", () => {
  test("a refusal, a rate-limited request, a CSP report and an origin failure", async () => {
    const refused = await request(edge.url, "GET", "/admin/users", { headers: client("198.51.100.11") });
    assert.equal(refused.status, 401);
    const limited = [];
    for (let i = 0; i < 3; i++) limited.push(await request(edge.url, "GET", "/limited/x", { headers: client("198.51.100.12") }));
    assert.deepEqual(limited.map((r) => r.status), [200, 200, 429]);
    const csp = await postReport(edge, "198.51.100.13", report("https://app.test/checkout?session=abc#top"));
    assert.equal(csp.status, 204, csp.body.toString());
    assert.equal(csp.body.length, 0);
    const failed = await request(edge.url, "GET", "/drop", { headers: client("198.51.100.14") });
    assert.equal(failed.status, 502);

    const ids = {
      refusal: one(refused, "x-request-id"),
      limited: one(limited[2], "x-request-id"),
      csp: one(csp, "x-request-id"),
      failure: one(failed, "x-request-id"),
    };
    const byId = (id) => capture.events().filter((e) => e.distinct_id === id);
    await waitFor("the four events", () => Object.values(ids).every((id) => byId(id).length === 1));

    for (const b of capture.batches) {
      assert.equal(b.method, "POST");
      assert.equal(b.url, "/batch/");
      assert.equal(b.body.api_key, POSTHOG_KEY, "the project key comes from the worker secret");
      for (const e of b.body.batch) {
        assert.equal(e.properties.$process_person_profile, false);
        assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(e.properties.app, "observe-e2e");
      }
    }
    const [r] = byId(ids.refusal);
    assert.equal(r.event, "edgeguard_refusal");
    assert.equal(r.properties.reason, "unauthorized");
    assert.equal(r.properties.status, 401);
    assert.equal(r.properties.route, "/admin/**");
    assert.equal(r.properties.$ip, "198.51.100.0", "the client address truncated to its /24");
    const [l] = byId(ids.limited);
    assert.equal(l.event, "edgeguard_refusal");
    assert.equal(l.properties.reason, "rate_limited");
    assert.equal(l.properties.status, 429);
    assert.equal(l.properties.limit, "/limited/**");
    assert.equal(l.properties.remaining, 0);
    const [c] = byId(ids.csp);
    assert.equal(c.event, "edgeguard_csp_violation");
    assert.equal(c.properties.document_uri, "https://app.test/checkout", "query and fragment cut off");
    assert.equal(c.properties.effective_directive, "script-src-elem");
    assert.equal(c.properties.blocked_uri, "inline");
    assert.equal(c.properties.disposition, "enforce");
    const [f] = byId(ids.failure);
    assert.equal(f.event, "edgeguard_origin_failure");
    assert.equal(f.properties.cause, "unreachable");
    assert.equal(f.properties.status, 502);
    assert.equal(f.properties.origin, "app");
    // The two admitted requests to /limited are page views (pageview_sample = 1 in this policy).
    const admitted = limited.slice(0, 2).map((res) => one(res, "x-request-id"));
    await waitFor("two page views", () => admitted.every((id) => byId(id).some((e) => e.event === "$pageview")));
    assert.equal(byId(admitted[0])[0].properties.$current_url, "http://app.test/limited/x");

    // The same report again within csp_dedupe: answered 204, counted as a duplicate, no event.
    const again = await postReport(edge, "198.51.100.13", report("https://app.test/checkout?session=other"));
    assert.equal(again.status, 204);

    const text = await waitFor("the batches to be counted", async () => {
      const m = await metrics(edge);
      return sample(m, 'edgeguard_posthog_batches_total{result="ok"}') >= capture.batches.length ? m : null;
    });
    for (const [series, value] of [
      ['edgeguard_requests_total{route="/admin/**",action="reject",reason="unauthorized",status="401"}', 1],
      ['edgeguard_requests_total{route="/limited/**",action="forward",reason="ok",status="200"}', 2],
      ['edgeguard_requests_total{route="/limited/**",action="reject",reason="rate_limited",status="429"}', 1],
      ['edgeguard_requests_total{route="(none)",action="respond",reason="csp_report",status="204"}', 2],
      ['edgeguard_requests_total{route="(defaults)",action="forward",reason="origin_unreachable",status="502"}', 1],
      ['edgeguard_origin_failures_total{origin="app",cause="unreachable"}', 1],
      ['edgeguard_csp_reports_total{result="accepted"}', 1],
      ['edgeguard_csp_reports_total{result="duplicate"}', 1],
      ['edgeguard_csp_violations_total{directive="script-src-elem"}', 1],
      ['edgeguard_edge_duration_seconds_count{route="/admin/**"}', 1],
      ['edgeguard_origin_duration_seconds_count{route="/limited/**",origin="app"}', 2],
      ['edgeguard_posthog_batches_total{result="timeout"}', 0],
      ['edgeguard_posthog_events_total{result="dropped"}', 0],
      ['edgeguard_analytics_points_total{result="error"}', 0],
    ]) {
      assert.equal(sample(text, series), value, series);
    }
    assert.ok(sample(text, 'edgeguard_posthog_events_total{result="queued"}') >= 6);
    // Analytics Engine: one writeDataPoint per request that returned without throwing (the
    // local binding accepts and discards points; see docs/observe.md).
    assert.ok(sample(text, 'edgeguard_analytics_points_total{result="ok"}') >= 7, text);
    assert.match(text, /^# TYPE edgeguard_requests_total counter$/m);
    assert.match(text, /^edgeguard_edge_duration_seconds_bucket\{route="\/admin\/\*\*",le="\+Inf"\} 1$/m);
    assert.match(text, /^edgeguard_build_info\{app="observe-e2e",environment="production",revision="[0-9a-f]{12}"\} 1$/m);
  });

  test("metrics: Prometheus text for the right key; 401 without it or with a wrong one; 405 for POST", async () => {
    const ok = await request(edge.url, "GET", "/__edge/metrics", { headers: client("192.0.2.201", { "x-api-key": METRICS_KEY }) });
    assert.equal(ok.status, 200);
    assert.equal(one(ok, "content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(one(ok, "cache-control"), "no-store");
    assert.match(one(ok, "server-timing"), /^edge;dur=\d+$/);
    for (const line of ok.body.toString().trimEnd().split("\n")) {
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="(?:[^"\\]|\\.)*",?)*\})? -?[\d.]+(e[+-]?\d+)?)$/, line);
    }
    for (const headers of [client("192.0.2.202"), client("192.0.2.202", { "x-api-key": "wrong" })]) {
      const res = await request(edge.url, "GET", "/__edge/metrics", { headers });
      assert.equal(res.status, 401);
      assert.equal(json(res).type, "https://edgeguard.dev/problems/unauthorized");
      assert.ok(!res.body.toString().includes("edgeguard_requests_total"));
    }
    const post = await request(edge.url, "POST", "/__edge/metrics", { headers: client("192.0.2.202", { "x-api-key": METRICS_KEY, "content-length": "0" }) });
    assert.equal(post.status, 405);
    assert.equal(one(post, "allow"), "GET, HEAD");
  });
});

describe("the CSP report intake", () => {
  test("report-to batches are accepted; malformed, oversized, other types and floods are refused; the origin sees none", async () => {
    const before = await originRequests();
    const batch = JSON.stringify([
      { type: "csp-violation", age: 0, url: "https://app.test/a", user_agent: "test", body: { documentURL: "https://app.test/a", effectiveDirective: "img-src", blockedURL: "https://img.example/x.png", disposition: "report" } },
      { type: "deprecation", url: "https://app.test/a", body: { id: "x" } },
    ]);
    assert.equal((await postReport(edge, "198.51.100.20", batch, "application/reports+json")).status, 204);

    const refused = async (res, status, type) => {
      assert.equal(res.status, status, res.body.toString());
      assert.equal(one(res, "content-type"), "application/problem+json");
      assert.equal(json(res).type, type);
      return res;
    };
    const problem = (name) => `https://edgeguard.dev/problems/${name}`;
    await refused(await postReport(edge, "198.51.100.21", "{not json"), 400, problem("bad-request"));
    await refused(await postReport(edge, "198.51.100.21", '{"csp-report": {"document-uri": 7}}'), 400, problem("bad-request"));
    await refused(await postReport(edge, "198.51.100.21", batch), 400, problem("bad-request")); // a report-to body sent as report-uri
    const big = JSON.stringify({ "csp-report": { "document-uri": "https://app.test/", "effective-directive": "img-src", "script-sample": "x".repeat(70 * 1024) } });
    await refused(await postReport(edge, "198.51.100.21", big), 413, problem("payload-too-large"));
    // Without Content-Length the edge counts the bytes as it reads them.
    const chunked = await request(edge.url, "POST", "/__edge/csp-report", {
      headers: client("198.51.100.21", { "content-type": "application/csp-report", "transfer-encoding": "chunked" }),
      body: big,
    });
    await refused(chunked, 413, problem("payload-too-large"));
    await refused(await postReport(edge, "198.51.100.21", report("https://app.test/"), "application/json"), 415, problem("unsupported-media-type"));
    const get = await refused(await request(edge.url, "GET", "/__edge/csp-report", { headers: client("198.51.100.21") }), 405, problem("method-not-allowed"));
    assert.equal(one(get, "allow"), "POST");

    // A flood from one client: 20 at once (csp_limit burst), then 429.
    const statuses = [];
    let last;
    for (let i = 0; i < 30; i++) {
      last = await postReport(edge, "198.51.100.22", report(`https://app.test/flood/${i}`));
      statuses.push(last.status);
    }
    const accepted = statuses.filter((s) => s === 204).length;
    assert.ok(accepted >= 20 && accepted <= 21, statuses.join(","));
    assert.equal(statuses.slice(accepted).every((s) => s === 429), true, statuses.join(","));
    await refused(last, 429, "https://iana.org/assignments/http-problem-types#quota-exceeded");
    assert.ok(Number(one(last, "retry-after")) >= 1);
    // Another client is not affected.
    assert.equal((await postReport(edge, "198.51.100.23", report("https://app.test/other"))).status, 204);

    const after = await originRequests();
    assert.equal(after.total, before.total, "no report, accepted or refused, reached the origin");
    assert.equal(after.paths["/__edge/csp-report"], undefined);

    const m = await metrics(edge);
    for (const [result, atLeast] of [["malformed", 3], ["too_large", 2], ["unsupported_media_type", 1], ["method_not_allowed", 1], ["rate_limited", 9], ["ignored", 1]]) {
      assert.ok(sample(m, `edgeguard_csp_reports_total{result="${result}"}`) >= atLeast, `${result}\n${m}`);
    }
    assert.ok(sample(m, 'edgeguard_csp_violations_total{directive="img-src"}') >= 1);
  });
});

describe("request logs", () => {
  test("one JSON line per request, consistent with Server-Timing and X-Request-Id, with the documented fields", async () => {
    const sent = [
      ["GET", "/limited/page?utm=1", 200],
      ["GET", "/admin/users", 401],
      ["GET", "/drop", 502],
    ];
    for (const [method, path, status] of sent) {
      const res = await request(edge.url, method, path, { headers: client("2001:db8:abcd:12::7") });
      assert.equal(res.status, status);
      const id = one(res, "x-request-id");
      const line = await requestLine(edge, id);
      assert.match(line.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(line.method, method);
      assert.equal(line.host, HOST);
      assert.equal(line.path, path.split("?")[0], "no query string");
      assert.equal(line.status, status);
      assert.equal(line.client_ip, "2001:db8:abcd::", "IPv6 truncated to its /48");
      const timing = one(res, "server-timing");
      assert.equal(Number(/edge;dur=(\d+)/.exec(timing)[1]), line.edge_ms, "Server-Timing and the log line agree");
      const originDur = /origin;dur=(\d+)/.exec(timing);
      assert.equal(originDur ? Number(originDur[1]) : undefined, line.origin_ms);
    }
  });

  test("levels: info for a forward, warn for a refusal, error for an origin failure", async () => {
    const ip = "198.51.100.40";
    const ok = await request(edge.url, "GET", "/limited/a", { headers: client(ip) });
    const no = await request(edge.url, "GET", "/admin/a", { headers: client(ip) });
    const down = await request(edge.url, "GET", "/drop", { headers: client(ip) });
    const okLine = await requestLine(edge, one(ok, "x-request-id"));
    assert.deepEqual([okLine.level, okLine.action, okLine.reason, okLine.route, okLine.origin, okLine.lane, okLine.limit], ["info", "forward", "ok", "/limited/**", "app", "active", "/limited/**"]);
    assert.equal(okLine.remaining, 1);
    const noLine = await requestLine(edge, one(no, "x-request-id"));
    assert.deepEqual([noLine.level, noLine.action, noLine.reason, noLine.status], ["warn", "reject", "unauthorized", 401]);
    assert.equal(noLine.detail, "a valid API key is required in `x-api-key`");
    const downLine = await requestLine(edge, one(down, "x-request-id"));
    assert.deepEqual([downLine.level, downLine.reason, downLine.origin_error, downLine.status], ["error", "origin_unreachable", "unreachable", 502]);
  });

  test("no log line ever carries a cookie, an API key, an Authorization header, a query string or a secret var", async () => {
    const secrets = {
      cookie: "cookie-secret-e2e-77aa",
      apiKey: "apikey-secret-e2e-31cd",
      bearer: "auth-secret-e2e-c0ffee",
      query: "query-secret-e2e-4242",
    };
    const ip = "198.51.100.50";
    const carrying = {
      cookie: `sid=${secrets.cookie}; theme=dark`,
      "x-api-key": secrets.apiKey,
      authorization: `Bearer ${secrets.bearer}`,
    };
    const requests = [
      ["GET", `/limited/p?token=${secrets.query}`, carrying],
      ["GET", `/admin/users?token=${secrets.query}`, carrying], // a wrong API key: 401
      ["GET", "/admin/users", { ...carrying, "x-api-key": ADMIN_KEY }], // the right one: forwarded
      ["GET", "/__edge/metrics", { ...carrying, "x-api-key": METRICS_KEY }],
      ["POST", `/__edge/csp-report?token=${secrets.query}`, { ...carrying, "content-type": "application/csp-report" }],
      ["GET", `/drop?token=${secrets.query}`, carrying],
    ];
    const ids = [];
    for (const [method, path, headers] of requests) {
      const body = method === "POST" ? report(`https://app.test/secret?token=${secrets.query}`, "style-src") : null;
      const h = client(ip, { ...headers, ...(body ? { "content-length": String(Buffer.byteLength(body)) } : {}) });
      const res = await request(edge.url, method, path, { headers: h, body });
      assert.ok(res.status < 500 || path.startsWith("/drop"), `${path}: ${res.status}`);
      ids.push(one(res, "x-request-id"));
    }
    for (const id of ids) await requestLine(edge, id);
    await sleep(200);
    const out = edge.stdout();
    for (const value of [...Object.values(secrets), ADMIN_KEY, METRICS_KEY, POSTHOG_KEY, ORIGIN_AUTH]) {
      const lines = out.split("\n").filter((l) => l.includes(value));
      assert.deepEqual(lines, [], `a log line carries ${value}`);
    }
    // …while the lines are there, and PostHog events carry none of them either.
    assert.equal(jsonLines(edge).filter((l) => ids.includes(l.request_id)).length, ids.length);
    await waitFor("the events", () => capture.events().some((e) => ids.includes(e.distinct_id)));
    const events = JSON.stringify(capture.events().filter((e) => ids.includes(e.distinct_id)));
    for (const value of [...Object.values(secrets), ADMIN_KEY, METRICS_KEY, ORIGIN_AUTH]) assert.ok(!events.includes(value), value);
  });
});

describe("PostHog never delays the response", () => {
  test("latency with the capture endpoint hanging stays within 5 ms of PostHog disabled", async (t) => {
    const hanging = await captureServer({ hang: true });
    const vars = { EDGE_ORIGINS: `*=${origin.url}` };
    // The repository's wrangler.toml: no Analytics Engine binding.
    const [withPosthog, without] = await Promise.all([
      startEdge({ protocol: "http", main: MAIN, vars: { ...vars, POSTHOG_KEY, EDGE_POSTHOG_HOST: hanging.url } }),
      startEdge({ protocol: "http", main: MAIN, vars }),
    ]);
    try {
      // Every request is a page view (pageview_sample = 1): one PostHog batch each.
      const time = async (e, i) => {
        const began = performance.now();
        const res = await request(e.url, "GET", `/page/${i}`, { headers: client(`198.51.100.${60 + (i % 100)}`) });
        const ms = performance.now() - began;
        assert.equal(res.status, 200);
        return ms;
      };
      for (let i = 0; i < 10; i++) {
        await time(withPosthog, i);
        await time(without, i);
      }
      const on = [];
      const off = [];
      for (let i = 0; i < 50; i++) {
        // Alternate the order so drift in the machine's load falls on both equally.
        if (i % 2) {
          on.push(await time(withPosthog, i));
          off.push(await time(without, i));
        } else {
          off.push(await time(without, i));
          on.push(await time(withPosthog, i));
        }
      }
      const median = (xs) => {
        const s = [...xs].sort((a, b) => a - b);
        return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
      };
      const [mOn, mOff] = [median(on), median(off)];
      t.diagnostic(`median latency over 50 requests: PostHog hanging ${mOn.toFixed(2)} ms, PostHog disabled ${mOff.toFixed(2)} ms`);
      console.log(`observe: median latency, PostHog hanging ${mOn.toFixed(2)} ms vs disabled ${mOff.toFixed(2)} ms`);
      assert.ok(mOn - mOff <= 5, `PostHog hanging: ${mOn.toFixed(2)} ms, disabled: ${mOff.toFixed(2)} ms`);

      // The batches were sent (and hang); after the 2 s timeout they are counted, never retried.
      assert.ok(hanging.batches.length >= 50, `${hanging.batches.length} batches reached the hanging endpoint`);
      const text = await waitFor("timeouts to be counted", async () => {
        const m = await metrics(withPosthog);
        return sample(m, 'edgeguard_posthog_batches_total{result="timeout"}') >= 50 ? m : null;
      }, 15_000);
      const sentBatches = hanging.batches.length;
      assert.equal(sample(text, 'edgeguard_posthog_batches_total{result="ok"}'), 0);
      await sleep(2500);
      assert.equal(hanging.batches.length, sentBatches, "no retries");
      // Disabled (no POSTHOG_KEY): nothing queued; no Analytics Engine binding: no points.
      const offText = await metrics(without);
      assert.equal(sample(offText, 'edgeguard_posthog_events_total{result="queued"}'), 0);
      assert.equal(sample(offText, 'edgeguard_analytics_points_total{result="ok"}'), 0);
    } finally {
      await Promise.all([withPosthog.stop(), without.stop(), hanging.close()]);
    }
  });
});
