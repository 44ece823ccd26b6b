// The browser playground in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): it loads and becomes interactive in under a second, shows the compiler's
// diagnostics inline as you type, decides requests exactly as `edgeguard explain` does, runs
// the rate-limit simulator, reproduces a case from a share link, survives a 1 MB policy and a
// binary paste — and recompiles QuoteKit's policy on a keystroke in 20 ms or less.
//
// Needs `make playground` (www/dist) and `make chromium`; `make playground-test` does both.
// Artifacts: target/playground-screenshot.png, target/playground-bench.json (the numbers in
// docs/benchmarks.md, "Playground").
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/serve-playground.mjs";
import { CHROMIUM, CHROMIUM_ARGS } from "../chromium.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST = join(ROOT, "www/dist");
const CLI = join(ROOT, "target/debug/edgeguard");
const QUOTEKIT = join(ROOT, "fixtures/quotekit.toml");
const READY_BUDGET_MS = 1000;
const KEYSTROKE_BUDGET_MS = 20;

let server;
let baseUrl;
let context;
let page;
const profiles = [];
const bench = {};

/// A browser with a fresh profile (playwright passes it as --user-data-dir).
async function launch() {
  const dir = mkdtempSync(join(tmpdir(), "edgeguard-playground-chromium-"));
  profiles.push(dir);
  return chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 1000 } });
}

/// Load the page and wait until it is interactive; returns the page and the milliseconds from
/// navigation start to `data-ready` (the page's own clock) and to the selector (ours).
async function open(ctx, url) {
  const p = await ctx.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(e.message));
  p.errors = errors;
  const t0 = performance.now();
  await p.goto(url);
  await p.waitForSelector("html[data-ready]", { timeout: 15000 });
  const outside = performance.now() - t0;
  const ready = Number(await p.getAttribute("html", "data-ready"));
  return { page: p, ready, outside };
}

const data = (p, name) => p.evaluate((n) => document.documentElement.dataset[n], name);

/// The number of checks the page has finished, to wait for the next one.
async function checks(p) {
  return Number((await data(p, "checks")) ?? 0);
}

async function waitForCheckAfter(p, n) {
  await p.waitForFunction((k) => Number(document.documentElement.dataset.checks ?? 0) > k && !document.documentElement.dataset.checking, n, { timeout: 30000 });
}

/// Replace the editor's text by typing it (select all, then keystrokes).
async function typePolicy(p, text) {
  await p.click(".cm-content");
  await p.keyboard.press("Control+A");
  await p.keyboard.press("Delete");
  await p.keyboard.type(text, { delay: 2 });
}

/// Paste text into the editor as the clipboard would deliver it.
async function paste(p, text) {
  await p.click(".cm-content");
  await p.keyboard.press("Control+A");
  await p.evaluate((t) => {
    const dt = new DataTransfer();
    dt.setData("text/plain", t);
    document.querySelector(".cm-content").dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
  }, text);
}

const editorText = (p) => p.evaluate(() => window.edgeguardPlayground.editor.state.doc.toString());

function cli(args) {
  return JSON.parse(execFileSync(CLI, ["explain", QUOTEKIT, "--format", "json", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
}

before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "www/dist is missing: run `make playground` first");
  assert.ok(existsSync(CHROMIUM), "Chromium is missing: run `make chromium` (apt-get install -y chromium)");
  execFileSync("cargo", ["build", "-q", "-p", "edgeguard-cli"], { cwd: ROOT, stdio: "inherit" });
  ({ server, url: baseUrl } = await serve({ root: DIST }));
  context = await launch();
});

after(async () => {
  await context?.close();
  server?.close();
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(ROOT, "target"), { recursive: true });
  writeFileSync(join(ROOT, "target/playground-bench.json"), `${JSON.stringify(bench, null, 2)}\n`);
  console.log("playground numbers:", JSON.stringify(bench));
});

test("the page loads from its own files and is interactive in under a second", async () => {
  const requests = [];
  context.on("request", (r) => requests.push(r.url()));
  const opened = await open(context, baseUrl);
  page = opened.page;
  // Two more cold loads, each in a fresh browser: these machines are shared, so one load can
  // land on a busy moment; the median of three is what the budget applies to.
  const loads = [opened.ready];
  for (let i = 0; i < 2; i++) {
    const cold = await launch();
    try {
      loads.push((await open(cold, baseUrl)).ready);
    } finally {
      await cold.close();
    }
  }
  const median = [...loads].sort((a, b) => a - b)[1];
  bench.ready_ms = { median, loads };
  bench.ready_outside_ms = Math.round(opened.outside);
  bench.worker_started_ms = Number(await data(page, "workerStartMs"));
  bench.wasm_fetched_ms = Number(await data(page, "wasmFetchedMs"));
  bench.wasm_ready_ms = Number(await data(page, "wasmReadyMs"));
  bench.dom_content_loaded_ms = Math.round(await page.evaluate(() => performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd));
  await page.waitForSelector("html[data-settled]", { timeout: 15000 });
  bench.settled_ms = Number(await data(page, "settled"));
  assert.ok(median < READY_BUDGET_MS, `interactive after ${loads.join(", ")} ms (budget ${READY_BUDGET_MS} ms for the median)`);
  // Nothing but the page's own origin.
  for (const url of requests) assert.ok(url.startsWith(baseUrl) || url.startsWith("data:"), `request outside the page: ${url}`);
  assert.match(await page.textContent("#check-status"), /warnings?/, "QuoteKit's CSP warnings are shown");
  assert.deepEqual(page.errors, []);
});

test("diagnostics appear inline at the right line with their code, and go away when fixed", async () => {
  const broken = 'version = 1\n\n[https]\nhsts = { max_age = "1 year" }\n';
  let n = await checks(page);
  await typePolicy(page, broken);
  await page.waitForFunction((t) => window.edgeguardPlayground.editor.state.doc.toString() === t, broken);
  await waitForCheckAfter(page, n);
  await page.waitForSelector('#diagnostics li.error[data-code="E070"]');
  const item = page.locator('#diagnostics li.error[data-code="E070"]');
  assert.equal(await item.getAttribute("data-line"), "4");
  assert.match(await item.textContent(), /max_age/);
  assert.match(await item.textContent(), /help: /);
  // Inline: the error is underlined on line 4 of the editor, with a marker in the gutter.
  await page.waitForSelector(".cm-lintRange-error");
  const line = await page.evaluate(() => {
    const mark = document.querySelector(".cm-lintRange-error");
    const view = window.edgeguardPlayground.editor;
    return view.state.doc.lineAt(view.posAtDOM(mark)).number;
  });
  assert.equal(line, 4);
  assert.equal(await page.locator(".cm-lint-marker-error").count(), 1);
  // The tooltip carries the code and the help line.
  await page.hover(".cm-lintRange-error");
  await page.waitForSelector(".cm-tooltip-lint");
  const tooltip = await page.textContent(".cm-tooltip-lint");
  assert.match(tooltip, /E070/);
  assert.match(tooltip, /help: /);
  // A request against a policy that does not compile says so.
  await page.click("#send");
  await page.waitForSelector("#decision-error");
  assert.match(await page.textContent("#decision-error"), /the policy has 1 error/);

  const fixed = 'version = 1\n\n[https]\nhsts = { max_age = "1y" }\n\n[origins.app]\nurl = "https://app.fly.dev"\n';
  n = await checks(page);
  await typePolicy(page, fixed);
  await page.waitForFunction((t) => window.edgeguardPlayground.editor.state.doc.toString() === t, fixed);
  await waitForCheckAfter(page, n);
  await page.waitForFunction(() => document.documentElement.dataset.errors === "0" && document.documentElement.dataset.warnings === "0");
  assert.equal(await page.locator("#diagnostics li").count(), 0);
  assert.equal(await page.locator(".cm-lintRange-error, .cm-lintRange-warning").count(), 0);
  assert.match(await page.textContent("#check-status"), /no problems/);
});

test("recompiling QuoteKit's policy on a keystroke takes at most 20 ms", async () => {
  await page.click('[data-preset="quotekit"]');
  await page.waitForSelector('#verdict[data-action="forward"]');
  await page.click(".cm-content");
  await page.keyboard.press("Control+End");
  await page.keyboard.type("\n# ");
  const times = [];
  for (const ch of "keystroke") {
    const n = await checks(page);
    await page.keyboard.type(ch);
    await waitForCheckAfter(page, n);
    times.push(Number(await data(page, "checkMs")));
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  bench.keystroke_check_ms = { median, min: times[0], max: times.at(-1), samples: times.length };
  assert.ok(median <= KEYSTROKE_BUDGET_MS, `median recompile ${median} ms (all: ${times.join(", ")})`);
});

test("a request to a blocked route shows 404 blocked", async () => {
  await page.click('[data-preset="quotekit"]');
  await page.selectOption("#method", "GET");
  await page.fill("#url", "https://lawnquote.online/api/debug-oauth");
  await page.click("#send");
  await page.waitForSelector('#verdict[data-status="404"][data-reason="blocked"]');
  assert.equal(await page.getAttribute("#verdict", "data-action"), "reject");
  assert.match(await page.textContent("#decision"), /\/api\/debug-\*/);
  const problem = JSON.parse(await page.textContent("#problem"));
  assert.equal(problem.status, 404);
  assert.equal(await page.getAttribute('#response-headers tr[data-name="content-type"]', "data-change"), "set");
  // The explain JSON is the CLI's, request id aside.
  const shown = JSON.parse(await page.textContent("#explain-json"));
  const expected = cli(["--request", "GET https://lawnquote.online/api/debug-oauth"]);
  for (const e of [shown, expected]) {
    delete e.response_headers["x-request-id"];
    delete e.problem.request_id;
  }
  assert.deepEqual(shown, expected);
});

test("the simulator's refusals start where `edgeguard explain --repeat` says", async () => {
  const url = "https://lawnquote.online/api/quotes";
  const ip = "198.51.100.7";
  // The engine's answer through the CLI: the first N of identical requests that is refused.
  let firstRefused = null;
  for (let n = 1; n <= 150 && firstRefused === null; n++) {
    if (cli(["--request", `GET ${url}`, "--client-ip", ip, "--repeat", String(n)]).status === 429) firstRefused = n;
  }
  assert.ok(firstRefused, "the CLI refuses within 150 requests");
  const before = cli(["--request", `GET ${url}`, "--client-ip", ip, "--repeat", String(firstRefused - 1)]);

  await page.fill("#url", url);
  await page.fill("#client-ip", ip);
  await page.fill("#sim-count", "150");
  for (const rate of ["0", "10"]) {
    await page.fill("#sim-rate", rate);
    const runs = Number((await data(page, "simulations")) ?? 0);
    await page.click("#sim-run");
    await page.waitForFunction((k) => Number(document.documentElement.dataset.simulations ?? 0) > k, runs);
    const summary = page.locator("#sim-summary");
    assert.equal(Number(await summary.getAttribute("data-first-refused")), firstRefused, `rate ${rate}/s`);
    assert.equal(Number(await summary.getAttribute("data-allowed")) + Number(await summary.getAttribute("data-refused")), 150);
    // The RateLimit header of the last allowed request is the CLI's.
    const cells = await page.locator(`#sim-steps tr[data-n="${firstRefused - 1}"] td`).allTextContents();
    if (rate === "0") assert.equal(cells[5], before.response_headers.ratelimit);
    const refused = await page.locator(`#sim-steps tr[data-n="${firstRefused}"] td`).allTextContents();
    assert.equal(refused[2], "429");
  }
  bench.simulator_first_refused = firstRefused;
  assert.equal(await page.locator("#sim-chart polyline").count(), 2);
});

test("the header report card grades the response headers", async () => {
  await page.fill("#url", "https://lawnquote.online/");
  await page.click("#report-run");
  await page.waitForSelector("#grade");
  assert.equal(await page.getAttribute("#grade", "data-grade"), "B+");
  assert.equal(await page.getAttribute('#report-tests tr[data-test="content-security-policy"]', "data-result"), "csp-implemented-with-unsafe-inline");
  assert.ok((await page.locator('#csp-findings li[data-code="W010"]').count()) >= 1);
});

test("strict CSP: an HTML page shows the nonce placeholder, as `edgeguard explain` does", async () => {
  const strict = readFileSync(QUOTEKIT, "utf8").replace(/^\[csp\]$/m, '[csp]\nstrict = "nonce"');
  const n = await checks(page);
  await paste(page, strict);
  await waitForCheckAfter(page, n);
  await page.selectOption("#method", "GET");
  await page.fill("#url", "https://lawnquote.online/");
  const d = Number((await data(page, "decisions")) ?? 0);
  await page.click("#send");
  await page.waitForFunction((k) => Number(document.documentElement.dataset.decisions) > k, d);
  // The origin's default answer is text/html: the page gets the strict policy.
  const csp = await page.textContent('#response-headers tr[data-name="content-security-policy"] td.v');
  assert.match(csp, /;script-src 'nonce-\{nonce\}' 'strict-dynamic' 'unsafe-eval' 'unsafe-inline' https:;/);
  assert.match(await page.textContent("#decision table.facts"), /strict CSP\s*enforce: text\/html responses get content-security-policy with a fresh nonce/);
  const dir = mkdtempSync(join(tmpdir(), "edgeguard-playground-strict-"));
  profiles.push(dir);
  const file = join(dir, "strict.toml");
  writeFileSync(file, strict);
  const expected = JSON.parse(execFileSync(CLI, ["explain", file, "--request", "GET https://lawnquote.online/"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  const shown = JSON.parse(await page.textContent("#explain-json"));
  assert.deepEqual(shown.csp_nonce, expected.csp_nonce);
  assert.equal(shown.response_headers["content-security-policy"], expected.response_headers["content-security-policy"]);
  assert.equal(shown.csp_nonce.value, csp);
  // The header report card grades what an HTML page gets.
  await page.click("#report-run");
  await page.waitForFunction(() => document.querySelector('#report-tests tr[data-test="content-security-policy"]')?.dataset.result === "csp-implemented-with-unsafe-eval");
  assert.ok((await page.locator('#csp-findings li[data-code="W103"]').count()) >= 1);
  assert.equal(await page.locator('#csp-findings li[data-code="W010"]').count(), 0);
  await page.click('[data-preset="quotekit"]');
});

test("a share link reproduces the policy, the request and the decision in a fresh browser", async () => {
  await page.click('[data-preset="quotekit"]');
  await page.selectOption("#method", "POST");
  await page.fill("#url", "https://lawnquote.online/api/quotes/123e4567-e89b-12d3-a456-426614174000/email");
  await page.fill("#headers", "Content-Length: 2");
  await page.fill("#client-ip", "198.51.100.7");
  await page.evaluate(() => (document.querySelector("details.more").open = true));
  await page.fill("#repeat", "6");
  const n = Number((await data(page, "decisions")) ?? 0);
  await page.click("#send");
  await page.waitForFunction((k) => Number(document.documentElement.dataset.decisions) > k, n);
  await page.waitForSelector('#verdict[data-status="429"]');
  const decision = await page.textContent("#explain-json");
  const policy = await editorText(page);
  await page.click("#share");
  await page.waitForFunction(() => document.querySelector("#share-link").value.includes("#s="));
  const link = await page.inputValue("#share-link");
  bench.share_link_chars = link.length;
  await page.screenshot({ path: join(ROOT, "target/playground-screenshot.png"), fullPage: true });

  const fresh = await launch();
  try {
    const { page: other } = await open(fresh, link);
    await other.waitForSelector("html[data-restored]", { timeout: 15000 });
    assert.equal(await editorText(other), policy);
    assert.equal(await other.inputValue("#method"), "POST");
    assert.equal(await other.inputValue("#headers"), "Content-Length: 2");
    assert.equal(await other.inputValue("#repeat"), "6");
    // Same seed, same draws: the very same answer, request id included.
    assert.equal(await other.textContent("#explain-json"), decision);
    assert.equal(await other.getAttribute("#verdict", "data-reason"), "rate_limited");
    assert.deepEqual(other.errors, []);
  } finally {
    await fresh.close();
  }
});

test("a 1 MB policy and a binary paste: the page stays responsive and says what is wrong", async () => {
  let big = 'version = 1\n[app]\nhosts = ["example.com"]\n[origins.app]\nurl = "https://app.fly.dev"\n';
  for (let i = 0; big.length < 1 << 20; i++) {
    big += `\n[[routes]]\npath = "/section-${i}/items/:id"\nmethods = ["GET", "HEAD"]\nparams = { id = "uuid" }\ncache = "no-store"\n`;
  }
  // Watch the main thread: long tasks, and how late a timer fires while the compiler runs.
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
  });
  let n = await checks(page);
  await paste(page, big);
  const lag = await page.evaluate(
    () =>
      new Promise((resolve) => {
        // While the worker compiles: a 10 ms timer, 20 times; the worst delay.
        let worst = 0;
        let left = 20;
        const tick = (at) => {
          worst = Math.max(worst, performance.now() - at - 10);
          if (--left === 0) resolve(worst);
          else setTimeout(tick, 10, performance.now());
        };
        setTimeout(tick, 10, performance.now());
      }),
  );
  await waitForCheckAfter(page, n);
  assert.equal((await editorText(page)).length, big.length);
  const compileMs = Number(await data(page, "checkMs"));
  const longest = await page.evaluate(() => Math.max(0, ...window.longTasks));
  bench.megabyte = { bytes: big.length, compile_ms: compileMs, main_thread_longest_task_ms: Math.round(longest), timer_lag_ms: Math.round(lag) };
  await page.waitForSelector('#input-warning[data-kind="size"]');
  assert.match(await page.textContent("#input-warning"), /1\.0 MB/);
  assert.match(await page.textContent("#check-status"), /compiled in/);
  // The compile ran off the main thread: no main-thread task as long as it.
  assert.ok(longest < Math.max(compileMs, 100) || compileMs < 100, `main thread blocked ${longest} ms while the compile took ${compileMs} ms`);
  // And the page answers input meanwhile: typing into the URL field works at once.
  await page.fill("#url", "https://example.com/");
  assert.equal(await page.inputValue("#url"), "https://example.com/");

  n = await checks(page);
  const binary = "\u0089PNG\r\n\u001a\n\u0000\u0000\u0000\rIHDR\u0000\u0000\u0001\u0000\ufffd\ufffd";
  await paste(page, binary);
  await waitForCheckAfter(page, n);
  await page.waitForSelector('#input-warning[data-kind="binary"]');
  assert.match(await page.textContent("#input-warning"), /binary data, not a policy/);
  assert.ok(Number(await data(page, "errors")) >= 1);
  assert.ok((await page.locator("#diagnostics li.error").count()) >= 1);
  assert.deepEqual(page.errors, []);

  // Back to a real policy: the page recovers.
  n = await checks(page);
  await page.click('[data-preset="helmet"]');
  await waitForCheckAfter(page, n);
  await page.waitForSelector("#input-warning", { state: "hidden" });
});

test("sizes", () => {
  const wasm = readFileSync(join(DIST, "pkg/edgeguard_playground_bg.wasm"));
  bench.wasm_bytes = wasm.length;
  bench.wasm_gzip_bytes = Number(execFileSync("sh", ["-c", `gzip -9 -c '${join(DIST, "pkg/edgeguard_playground_bg.wasm")}' | wc -c`], { encoding: "utf8" }).trim());
  assert.ok(bench.wasm_gzip_bytes < 1 << 20);
});

test("edge cache: the decision says what is stored and for how long, as `edgeguard explain` does", async () => {
  const n = await checks(page);
  await paste(page, readFileSync(QUOTEKIT, "utf8"));
  await waitForCheckAfter(page, n);
  await page.selectOption("#method", "GET");
  await page.fill("#url", "https://lawnquote.online/_next/static/chunks/app.js");
  const d = Number((await data(page, "decisions")) ?? 0);
  await page.click("#send");
  await page.waitForFunction((k) => Number(document.documentElement.dataset.decisions) > k, d);
  const facts = await page.textContent("#decision table.facts");
  assert.match(facts, /edge cache\s*looked up and stored \(fresh 31536000 s\) under https:\/\/lawnquote\.online\/_next\/static\/chunks\/app\.js\?edgeguard-cache=1/);
  const expected = JSON.parse(execFileSync(CLI, ["explain", QUOTEKIT, "--request", "GET https://lawnquote.online/_next/static/chunks/app.js"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  const shown = JSON.parse(await page.textContent("#explain-json"));
  assert.deepEqual(shown.cache, expected.cache);
  assert.equal(shown.on_origin_failure, expected.on_origin_failure);
});

test("a test session: an admin's claims open the admin API, a user's get 403, and the header is shown", async () => {
  const n = await checks(page);
  await paste(page, readFileSync(QUOTEKIT, "utf8"));
  await waitForCheckAfter(page, n);
  await page.selectOption("#method", "GET");
  await page.fill("#url", "https://lawnquote.online/api/admin/users");
  await page.fill("#session", '{"sub":"u-1","app_metadata":{"role":"admin"}}');
  await page.click("#send");
  await page.waitForSelector('#verdict[data-action="forward"]');
  const shown = JSON.parse(await page.textContent("#explain-json"));
  assert.equal(shown.session.state, "verified");
  assert.deepEqual(shown.session.claims, { "app_metadata.role": ["admin"], sub: ["u-1"] });
  assert.equal(shown.rate_limit.key, "session:sub");
  await page.waitForSelector("#session-token:not([hidden])");
  assert.match(await page.textContent("#session-header"), /^authorization: Bearer eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  await page.fill("#session", '{"sub":"u-2","app_metadata":{"role":"user"}}');
  await page.click("#send");
  await page.waitForSelector('#verdict[data-status="403"][data-reason="session_claims"]');
  await page.fill("#session", "{not json");
  await page.click("#send");
  await page.waitForFunction(() => document.body.textContent.includes("Test session: the claims are not valid JSON"));
  await page.fill("#session", "");
  await page.click("#send");
  await page.waitForSelector('#verdict[data-status="401"][data-reason="session_missing"]');
});
