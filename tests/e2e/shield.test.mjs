// Bots, geography and the shield in the real worker (workerd): a probe sequence from one client
// is refused after the threshold and served again after the cool-down; request.cf reaches the
// engine; refusals are problem+json with their own types; log lines name the reason, never the
// user agent (issue #21).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { json, jsonLines, one, request, startEdge, startOrigin } from "./harness.mjs";

const SCANNER = "203.0.113.66";
const OTHER = "203.0.113.67";
const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
let origin;
let edge;

before(async () => {
  origin = await startOrigin("blue");
  edge = await startEdge({ protocol: "http", main: "build/edge-shield/index.mjs", vars: { EDGE_ORIGINS: `*=${origin.url}` } });
});

after(async () => {
  await Promise.all([edge?.stop(), origin?.stop()]);
});

const get = (path, ip, headers = {}) => request(edge.url, "GET", path, { headers: { host: "app.test", "cf-connecting-ip": ip, "user-agent": CHROME, ...headers } });

test("a probe sequence is refused after the threshold and served again after the cool-down", async () => {
  // Below the threshold the probes reach the origin (which answers them as it likes).
  for (const path of ["/.env", "/.git/config"]) {
    const res = await get(path, SCANNER);
    assert.notEqual(res.status, 429, `${path}: ${res.body}`);
  }
  // The third suspends the client: 429 problem+json shield-blocked with Retry-After.
  const third = await get("/wp-login.php", SCANNER);
  assert.equal(third.status, 429, third.body.toString());
  assert.equal(one(third, "content-type"), "application/problem+json");
  assert.equal(one(third, "retry-after"), "3");
  const problem = json(third);
  assert.equal(problem.type, "https://edgeguard.dev/problems/shield-blocked");
  assert.equal(problem.title, "Client suspended");
  assert.equal(problem.retry_after, 3);
  // Every path is refused now, an innocent one too; another client is served.
  const innocent = await get("/dashboard", SCANNER);
  assert.equal(innocent.status, 429);
  assert.equal(json(innocent).type, "https://edgeguard.dev/problems/shield-blocked");
  const other = await get("/dashboard", OTHER);
  assert.equal(other.status, 200, other.body.toString());
  // After the cool-down the client is served again.
  await sleep(3_300);
  const again = await get("/dashboard", SCANNER);
  assert.equal(again.status, 200, again.body.toString());
  // The log line says why, and carries neither the user agent nor the path's payload source.
  const lines = jsonLines(edge).filter((l) => l.reason === "shield_blocked");
  assert.ok(lines.length >= 2, edge.stdout());
  for (const line of lines) assert.ok(!JSON.stringify(line).includes("Chrome/131"), JSON.stringify(line));
});

test("request.cf reaches the engine: workerd's placeholder location is US, NA", async () => {
  const ok = await get("/us-only/x", OTHER);
  assert.equal(ok.status, 200, ok.body.toString());
  const refused = await get("/not-from-na/x", OTHER);
  assert.equal(refused.status, 403, refused.body.toString());
  assert.equal(json(refused).type, "https://edgeguard.dev/problems/geo-denied");
  // A client-sent country header changes nothing.
  const spoofed = await get("/not-from-na/x", OTHER, { "cf-ipcountry": "DE" });
  assert.equal(spoofed.status, 403);
});

test("a bot category refused on a route gets its own problem type; a browser does not", async () => {
  const script = await get("/api/quotes", OTHER, { "user-agent": "python-requests/2.32.3" });
  assert.equal(script.status, 403, script.body.toString());
  const body = json(script);
  assert.equal(body.type, "https://edgeguard.dev/problems/bot-denied");
  assert.match(body.detail, /script/);
  const browser = await get("/api/quotes", OTHER);
  assert.equal(browser.status, 200, browser.body.toString());
  // An unverified Googlebot is `unknown`, not a search engine: this route serves unknown clients.
  const claimed = await get("/api/quotes", OTHER, { "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" });
  assert.equal(claimed.status, 200);
  const line = jsonLines(edge).find((l) => l.reason === "bot_denied");
  assert.ok(line, edge.stdout());
  assert.ok(!JSON.stringify(line).includes("python-requests"), JSON.stringify(line));
});
