// Operating the edge, in workerd with real Durable Objects and alarms (issue #17): two edge
// instances share one fleet statistics object; the numbers it reports at `?scope=fleet` and on
// the dashboard match what was sent (counts exactly, percentiles within the histogram's stated
// error); an SLO breach pages exactly once at a local webhook receiver and resolves exactly
// once, a failing receiver is retried; the dashboard renders in Chromium with no console error
// and no CSP violation at 400 px; a restart of the runtime keeps the history.
//
// Build: `make edges` (build/edge-operate from tests/e2e/operate.toml: 500 ms "minutes").
// Screenshots: target/operate-dashboard-400.png and target/operate-dashboard-1280.png.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { once } from "node:events";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { ROOT, request, startEdge, startOrigin } from "./harness.mjs";
import { CHROMIUM, CHROMIUM_ARGS } from "../chromium.mjs";

const MAIN = "build/edge-operate/index.mjs";
const PEER = "tests/e2e/wrangler.operate-peer.toml";
const HOST = "app.test";
const METRICS_KEY = "e2e-metrics-scrape-key";
/** The histogram's stated error (edgeguard_core::stats::RELATIVE_ERROR), plus half a millisecond. */
const RELATIVE_ERROR = 1 / 64;

let origin;
let receiver;
let a;
let b;
let persist;
let vars;

/** A local webhook receiver: every request by path, with its body and headers. The first
 * `failFirst` requests to /hook answer 500. */
async function startReceiver(failFirst) {
  const got = [];
  let hookCalls = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let status = 200;
      if (req.url === "/hook" && hookCalls++ < failFirst) status = 500;
      got.push({ path: req.url, headers: req.headers, body: body ? JSON.parse(body) : null, status, at: Date.now() });
      res.writeHead(status, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${server.address().port}`, got, stop: () => new Promise((r) => server.close(r)) };
}

before(async () => {
  origin = await startOrigin("app");
  receiver = await startReceiver(1);
  persist = mkdtempSync(path.join(tmpdir(), "edgeguard-operate-"));
  vars = {
    EDGE_ORIGINS: `app=${origin.url}`,
    EDGE_ALERT_SLACK_URL: `${receiver.url}/slack`,
    EDGE_ALERT_WEBHOOK_URL: `${receiver.url}/hook`,
    EDGE_ALERT_WEBHOOK_TOKEN: "e2e-webhook-token",
    POSTHOG_KEY: "phc_e2e_operate",
    EDGE_POSTHOG_HOST: receiver.url,
  };
  a = await startEdge({ main: MAIN, vars, persistTo: persist });
  b = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `app=${origin.url}` }, config: PEER });
});

after(async () => {
  await b?.stop();
  await a?.stop();
  await Promise.all([origin?.stop(), receiver?.stop()]);
  if (persist) rmSync(persist, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(ip, extra = {}) {
  return { host: HOST, "cf-connecting-ip": ip, ...extra };
}

async function fleet(edge) {
  const res = await request(edge.url, "GET", "/__edge/metrics?scope=fleet", { headers: client("192.0.2.250", { "x-api-key": METRICS_KEY }) });
  assert.equal(res.status, 200, res.body.toString());
  return res.body.toString("utf8");
}

/** The value of one Prometheus sample, by its exact name and labels; undefined when absent. */
function sample(text, series) {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function originMs(res) {
  const m = /origin;dur=(\d+)/.exec(res.headers["server-timing"]?.[0] ?? "");
  assert.ok(m, "Server-Timing has origin;dur");
  return Number(m[1]);
}

/** The nearest-rank quantile, as the fleet computes it. */
function quantile(values, q) {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

function close(got, truth, what) {
  assert.ok(Math.abs(got - truth) <= truth * RELATIVE_ERROR + 0.5, `${what}: ${got} vs ${truth} (±${(RELATIVE_ERROR * 100).toFixed(1)} %)`);
}

/** Until `check` returns something truthy, or fail after `ms`. */
async function until(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(250);
  }
}

const sent = { slow: [], admin: 0, limited429: 0, limitedOk: 0, api: 0 };

test("fleet numbers from two instances match what was sent: counts exactly, percentiles within the stated error", async () => {
  const delays = [5, 12, 30, 45, 60, 80, 95, 120, 150, 180, 210, 260];
  await Promise.all(
    delays.map(async (ms, i) => {
      const res = await request(i % 2 ? a.url : b.url, "GET", `/slow?ms=${ms}`, { headers: client(`198.51.100.${i + 1}`) });
      assert.equal(res.status, 200);
      sent.slow.push(originMs(res));
    }),
  );
  for (let i = 0; i < 5; i++) {
    const res = await request(i % 2 ? a.url : b.url, "GET", "/admin/x", { headers: client("198.51.100.40") });
    assert.equal(res.status, 401);
    sent.admin++;
  }
  for (let i = 0; i < 4; i++) {
    const res = await request(a.url, "GET", "/limited/x", { headers: client("198.51.100.41") });
    if (res.status === 429) sent.limited429++;
    else sent.limitedOk++;
  }
  assert.equal(sent.limited429, 2);
  for (let i = 0; i < 6; i++) {
    const res = await request(i % 2 ? a.url : b.url, "GET", "/api/health", { headers: client("198.51.100.42") });
    assert.equal(res.status, 200);
    sent.api++;
  }
  // Each isolate flushes at most once per second ([stats] flush = "1s"); the reader flushes its own.
  const text = await until(async () => {
    const t = await fleet(a);
    return sample(t, 'edgeguard_fleet_requests_total{route="/slow",class="2xx"}') === delays.length && sample(t, 'edgeguard_fleet_requests_total{route="/api/**",class="2xx"}') === sent.api ? t : null;
  }, 10_000, "both instances' numbers in the fleet object");
  assert.equal(sample(text, 'edgeguard_fleet_requests_total{route="/admin/**",class="4xx"}'), sent.admin);
  assert.equal(sample(text, 'edgeguard_fleet_reasons_total{route="/admin/**",reason="unauthorized"}'), sent.admin);
  assert.equal(sample(text, 'edgeguard_fleet_refusals_total{route="/admin/**"}'), sent.admin);
  assert.equal(sample(text, 'edgeguard_fleet_rate_limited_total{route="/limited/**",limit="/limited/**"}'), 2);
  assert.equal(sample(text, 'edgeguard_fleet_requests_total{route="/limited/**",class="4xx"}'), 2);
  assert.equal(sample(text, 'edgeguard_fleet_origin_duration_seconds_count{route="/slow"}'), delays.length);
  assert.equal(sample(text, 'edgeguard_slo_requests_total{slo="api",objective="availability"}'), sent.api);
  assert.equal(sample(text, 'edgeguard_slo_bad_total{slo="api",objective="availability"}'), 0);
  const slowOver = sent.slow.filter((ms) => ms > 200).length;
  assert.equal(sample(text, 'edgeguard_slo_requests_total{slo="slow",objective="latency"}'), delays.length);
  assert.ok(Math.abs(sample(text, 'edgeguard_slo_bad_total{slo="slow",objective="latency"}') - slowOver) <= 1, "slow requests over 200 ms");
  for (const q of [0.5, 0.95, 0.99]) {
    const got = sample(text, `edgeguard_fleet_latency_seconds{route="/slow",of="origin",quantile="${q}"}`) * 1000;
    close(got, quantile(sent.slow, q), `fleet p${q * 100}`);
  }
  // Both instances flushed into the one object (more than one flush).
  assert.ok(sample(text, "edgeguard_fleet_flushes_total") >= 2);
  // Isolate numbers stay at the plain path.
  const own = await request(a.url, "GET", "/__edge/metrics", { headers: client("192.0.2.250", { "x-api-key": METRICS_KEY }) });
  assert.match(own.body.toString(), /edgeguard_isolate_start_time_seconds/);
  assert.doesNotMatch(own.body.toString(), /edgeguard_fleet_requests_total/);

  // The dashboard says the same, from either instance.
  const res = await request(b.url, "GET", "/__edge/dashboard", { headers: client("192.0.2.250", { "x-api-key": METRICS_KEY }) });
  assert.equal(res.status, 200);
  assert.match(res.headers["content-type"][0], /^text\/html/);
  assert.match(res.headers["content-security-policy"][0], /^default-src 'none'; style-src 'sha256-/);
  const html = res.body.toString("utf8");
  const cell = (route, k) => {
    const row = html.split(`<tr data-route="${route}">`)[1]?.split("</tr>")[0] ?? "";
    return new RegExp(`data-k="${k}">([^<]*)<`).exec(row)?.[1];
  };
  assert.equal(cell("/slow", "requests"), String(delays.length));
  assert.equal(cell("/admin/**", "refused"), String(sent.admin));
  for (const [k, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) {
    close(Number(cell("/slow", k).replace(" ms", "")), quantile(sent.slow, q), `dashboard ${k}`);
  }
  assert.match(html, /data-limit="\/limited\/\*\*"><td>\/limited\/\*\*<\/td><td class="n">2</);
  // Unauthenticated: 401, like the metrics endpoint.
  const anon = await request(a.url, "GET", "/__edge/dashboard", { headers: client("192.0.2.251") });
  assert.equal(anon.status, 401);
});

test("the dashboard in Chromium: data, no console error, no CSP violation, one request, readable at 400 px", async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip("Chromium is missing: run `make chromium`");
  const { chromium } = await import("playwright-core");
  const port = new URL(a.url).port;
  const profile = mkdtempSync(path.join(tmpdir(), "edgeguard-operate-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
    extraHTTPHeaders: { "x-api-key": METRICS_KEY },
    ignoreHTTPSErrors: true,
    viewport: { width: 400, height: 900 },
  });
  try {
    const page = await browser.newPage();
    const problems = [];
    const requests = [];
    page.on("console", (m) => (m.type() === "error" || m.type() === "warning") && problems.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("request", (r) => requests.push(r.url()));
    const res = await page.goto(`https://${HOST}:${port}/__edge/dashboard`);
    assert.equal(res.status(), 200);
    const violations = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const seen = [];
          document.addEventListener("securitypolicyviolation", (e) => seen.push(e.violatedDirective));
          setTimeout(() => resolve(seen), 300);
        }),
    );
    assert.deepEqual(violations, []);
    assert.deepEqual(problems, [], "no console errors or CSP reports");
    assert.deepEqual(requests, [`https://${HOST}:${port}/__edge/dashboard`], "the page loads nothing else");
    const status = await page.textContent("#status");
    assert.match(status, /SLO|budget|Alerting/);
    assert.equal(await page.locator('tr[data-route="/slow"]').count(), 1, "the data is on the page");
    const fonts = await page.evaluate(() => getComputedStyle(document.body).fontSize);
    assert.equal(fonts, "14px", "the page's own stylesheet applied (allowed by its hash)");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 400, `no horizontal scrolling at 400 px (${overflow})`);
    const svgWidth = await page.evaluate(() => document.querySelector("svg[role=img]").getBoundingClientRect().width);
    assert.ok(svgWidth > 300 && svgWidth <= 400, `charts fill the width (${svgWidth})`);
    mkdirSync(path.join(ROOT, "target"), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, "target/operate-dashboard-400.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(ROOT, "target/operate-dashboard-1280.png"), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test("an SLO breach pages exactly once and resolves exactly once; a failing receiver is retried", async () => {
  const breach = await request(origin.url, "POST", "/__demo/health?status=500");
  assert.equal(breach.status, 200);
  for (let i = 0; i < 20; i++) {
    const res = await request(i % 2 ? a.url : b.url, "GET", "/api/health", { headers: client("198.51.100.43") });
    assert.equal(res.status, 500);
  }
  const slack = () => receiver.got.filter((r) => r.path === "/slack");
  const firing = await until(() => slack().find((r) => r.body.text.includes("firing")), 15_000, "a page at the Slack receiver");
  assert.match(firing.body.text, /\[PAGE\] operate-e2e SLO `api` \(99 % of requests without a 5xx\) firing/);
  // The generic webhook: the first attempt got a 500, the retry (2 s later) was taken.
  const hooks = await until(() => {
    const h = receiver.got.filter((r) => r.path === "/hook");
    return h.length >= 2 ? h : null;
  }, 10_000, "the webhook retried");
  assert.equal(hooks[0].status, 500);
  assert.equal(hooks[1].status, 200);
  assert.equal(hooks[0].body.id, hooks[1].body.id, "the same notice, retried");
  assert.ok(hooks[1].at - hooks[0].at >= 1500, "after a backoff");
  assert.equal(hooks[1].body.status, "firing");
  assert.equal(hooks[1].body.slo, "api");
  assert.equal(hooks[1].body.severity, "page");
  assert.ok(hooks[1].body.burn_rate_short > 14.4);
  assert.equal(hooks[1].headers.authorization, "Bearer e2e-webhook-token");
  const events = () => receiver.got.filter((r) => r.path === "/batch/").flatMap((r) => r.body.batch).filter((e) => e.event === "edgeguard_alert");
  await until(() => events().length === 1, 5_000, "one PostHog alert event");
  assert.equal(receiver.got.find((r) => r.path === "/batch/").body.api_key, "phc_e2e_operate");

  // Recovery: the origin answers again; the short windows (2.5 s, 15 s) empty out.
  await request(origin.url, "POST", "/__demo/health?status=200");
  for (let i = 0; i < 10; i++) {
    await request(i % 2 ? a.url : b.url, "GET", "/api/health", { headers: client("198.51.100.44") });
    await sleep(200);
  }
  const resolved = await until(() => slack().find((r) => r.body.text.includes("resolved")), 30_000, "the resolve at the Slack receiver");
  assert.match(resolved.body.text, /SLO `api`.* resolved/);
  await sleep(2000); // any second page or resolve would have arrived by now
  assert.deepEqual(slack().map((r) => r.body.text.includes("firing") ? "firing" : "resolved"), ["firing", "resolved"], "one page, one resolve");
  const hookIds = new Set(receiver.got.filter((r) => r.path === "/hook" && r.status === 200).map((r) => r.body.status));
  assert.deepEqual([...hookIds].sort(), ["firing", "resolved"]);
  assert.deepEqual(events().map((e) => e.properties.status), ["firing", "resolved"]);
  const text = await fleet(a);
  assert.equal(sample(text, 'edgeguard_fleet_alert_notifications_total{destination="webhook",result="failed"}'), 1);
  assert.equal(sample(text, 'edgeguard_fleet_alert_notifications_total{destination="webhook",result="ok"}'), 2);
  assert.equal(sample(text, 'edgeguard_fleet_alert_notifications_total{destination="slack",result="ok"}'), 2);
  assert.equal(sample(text, 'edgeguard_slo_alert_firing{slo="api",objective="availability",severity="page"}'), 0);
  assert.equal(sample(text, 'edgeguard_slo_bad_total{slo="api",objective="availability"}'), 20);
});

test("restarting the runtime keeps the history", async () => {
  const series = ['edgeguard_fleet_requests_total{route="/slow",class="2xx"}', 'edgeguard_fleet_requests_total{route="/admin/**",class="4xx"}', 'edgeguard_fleet_requests_total{route="/api/**",class="5xx"}', 'edgeguard_slo_bad_total{slo="api",objective="availability"}', 'edgeguard_fleet_origin_duration_seconds_count{route="/slow"}'];
  const before = await fleet(a);
  await b.stop();
  b = null;
  await a.stop();
  a = await startEdge({ main: MAIN, vars, persistTo: persist });
  const again = await fleet(a);
  for (const s of series) {
    assert.ok(sample(before, s) > 0, s);
    assert.equal(sample(again, s), sample(before, s), s);
  }
  const html = (await request(a.url, "GET", "/__edge/dashboard", { headers: client("192.0.2.250", { "x-api-key": METRICS_KEY }) })).body.toString();
  assert.match(html, /<code>[0-9a-f]{12}<\/code>/, "the revision marker survived");
});
