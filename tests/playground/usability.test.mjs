// The playground for everyone, in real headless Chromium: it works at 400, 800 and 1400 px
// (no sideways scroll, nothing covers the cards), from the keyboard and for screen readers;
// every edit decides again and a decision that no longer matches the inputs says so; errors
// come before warnings; a damaged share link is an error, not QuoteKit; the report card and
// the decision say what they mean.
//
// Needs `make playground` (www/dist) and `make chromium`; `make playground-test` does both.
// Screenshots: target/playground-400.png, -800.png, -1400.png and target/playground-stale.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { unzipSync } from "fflate";
import { one, request, startEdge, startOrigin } from "../e2e/harness.mjs";
import { serve } from "../../scripts/serve-playground.mjs";
import { CHROMIUM, CHROMIUM_ARGS } from "../chromium.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST = join(ROOT, "www/dist");
const QUOTEKIT = readFileSync(join(ROOT, "fixtures/quotekit.toml"), "utf8");

let server;
let baseUrl;
let browser;
let profile;
let page;

before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "www/dist is missing: run `make playground` first");
  assert.ok(existsSync(CHROMIUM), "Chromium is missing: run `make chromium`");
  mkdirSync(join(ROOT, "target"), { recursive: true });
  ({ server, url: baseUrl } = await serve({ root: DIST }));
  profile = mkdtempSync(join(tmpdir(), "edgeguard-playground-usability-"));
  browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
  page = await open(baseUrl);
});

after(async () => {
  await browser?.close();
  server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function open(url, viewport) {
  const p = await browser.newPage();
  if (viewport) await p.setViewportSize(viewport);
  p.errors = [];
  p.on("pageerror", (e) => p.errors.push(e.message));
  await p.goto(url);
  await p.waitForSelector("html[data-settled]", { timeout: 15000 });
  return p;
}

const data = (p, name) => p.evaluate((n) => document.documentElement.dataset[n], name);
const count = async (p, name) => Number((await data(p, name)) ?? 0);

/// Wait until the page has decided once more than `n` times.
async function decidedAfter(p, n) {
  await p.waitForFunction((k) => Number(document.documentElement.dataset.decisions ?? 0) > k, n, { timeout: 15000 });
}

async function setPolicy(p, text) {
  const n = await count(p, "checks");
  await p.evaluate((t) => {
    const view = window.edgeguardPlayground.editor;
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } });
  }, text);
  await p.waitForFunction((k) => Number(document.documentElement.dataset.checks ?? 0) > k && !document.documentElement.dataset.checking, n, { timeout: 30000 });
}

async function quotekit(p) {
  const n = await count(p, "decisions");
  await p.click('[data-preset="quotekit"]');
  await decidedAfter(p, n);
}

/// The element at the centre of `selector` after scrolling to it: what a click there hits.
function hitAtCentre(p, selector) {
  return p.evaluate((sel) => {
    const el = document.querySelector(sel);
    el.scrollIntoView({ block: "center" });
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return { ok: el === hit || el.contains(hit), hit: hit ? `${hit.tagName}#${hit.id}.${hit.className}` : null };
  }, selector);
}

for (const width of [400, 800, 1400]) {
  test(`at ${width} px: no sideways scroll, and Simulate, Grade and Send are where a click lands`, async () => {
    const p = await open(baseUrl, { width, height: 800 });
    try {
      const layout = await p.evaluate(() => ({
        scroll: document.scrollingElement.scrollWidth,
        inner: innerWidth,
        wider: [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest(".steps, pre, #report, #decision"))
          .slice(0, 5)
          .map((e) => `${e.tagName}#${e.id}.${e.className}`),
      }));
      assert.equal(layout.scroll, layout.inner, `the page scrolls sideways: ${layout.scroll} > ${layout.inner} (${layout.wider.join(", ")})`);
      assert.deepEqual(layout.wider, []);
      for (const sel of ["#sim-run", "#report-run", "#send", "#share"]) {
        const hit = await hitAtCentre(p, sel);
        assert.ok(hit.ok, `${sel} at ${width} px is covered by ${hit.hit}`);
      }
      // Really clicking Simulate runs the simulator.
      const runs = await count(p, "simulations");
      await p.click("#sim-run");
      await p.waitForFunction((k) => Number(document.documentElement.dataset.simulations ?? 0) > k, runs);
      await p.click("#report-run");
      await p.waitForSelector("#grade");
      const after = await p.evaluate(() => document.scrollingElement.scrollWidth);
      assert.equal(after, width, "the simulator and the report card fit too");
      await p.screenshot({ path: join(ROOT, `target/playground-${width}.png`), fullPage: true });
      assert.deepEqual(p.errors, []);
    } finally {
      await p.close();
    }
  });
}

test("keyboard: the editor says how to leave it, Esc then Tab leaves it, and the request's fields come before Send", async () => {
  const hint = await page.evaluate(() => {
    const content = document.querySelector(".cm-content");
    return { describedBy: content.getAttribute("aria-describedby"), text: document.getElementById(content.getAttribute("aria-describedby"))?.textContent, visible: !!document.querySelector("#editor-hint").offsetParent };
  });
  assert.equal(hint.describedBy, "editor-hint");
  assert.match(hint.text, /Esc.*Tab/);
  assert.ok(hint.visible, "the hint is on screen, not only for screen readers");
  await page.click(".cm-content");
  await page.keyboard.press("Tab");
  assert.ok(await page.evaluate(() => document.activeElement.closest(".cm-editor") !== null), "Tab alone indents and stays in the editor");
  await page.keyboard.press("Escape");
  await page.keyboard.press("Tab");
  assert.ok(await page.evaluate(() => document.activeElement.closest(".cm-editor") === null), "Esc then Tab leaves the editor");
  await page.keyboard.press("Control+z"); // the indent typed above
  // Tab order in the request form: method, URL, examples, headers, cookies, client IP, then Send.
  await page.focus("#url");
  const order = [];
  for (let i = 0; i < 20 && order.at(-1) !== "send"; i++) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.tagName.toLowerCase()));
  }
  const at = (id) => order.indexOf(id);
  for (const id of ["headers", "cookies", "client-ip"]) assert.ok(at(id) >= 0 && at(id) < at("send"), `${id} before Send: ${order.join(" → ")}`);
});

test("keyboard: a diagnostic is a button; Enter on it puts the cursor on its line", async () => {
  const broken = 'version = 1\n\n[https]\nhsts = { max_age = "1 year" }\n';
  await setPolicy(page, broken);
  const go = page.locator('#diagnostics li[data-code="E070"] button.go');
  await go.focus();
  assert.equal(await page.evaluate(() => document.activeElement.closest("li")?.dataset.code), "E070");
  await page.keyboard.press("Enter");
  const cursor = await page.evaluate(() => {
    const view = window.edgeguardPlayground.editor;
    return { focused: view.hasFocus, line: view.state.doc.lineAt(view.state.selection.main.head).number };
  });
  assert.deepEqual(cursor, { focused: true, line: 4 });
  assert.match(await page.getAttribute('#diagnostics li[data-code="E070"] a.docs', "href"), /docs\/diagnostics\.md#errors$/);
  await quotekit(page);
});

test("the decision panel is a live region that names the request it decided", async () => {
  await quotekit(page);
  assert.equal(await page.getAttribute("#decision-status", "role"), "status");
  assert.equal(await page.getAttribute("#decision-status", "aria-live"), "polite");
  const n = await count(page, "decisions");
  await page.fill("#url", "https://lawnquote.online/api/debug-oauth");
  await decidedAfter(page, n);
  await page.waitForSelector('#verdict[data-reason="blocked"]');
  assert.equal(await page.textContent("#decision-status"), "GET https://lawnquote.online/api/debug-oauth: reject → 404 blocked");
});

test("one update model: URL, method, headers and environment edits decide again without Send", async () => {
  await quotekit(page);
  let n = await count(page, "decisions");
  await page.fill("#url", "https://lawnquote.online/api/debug-oauth");
  await decidedAfter(page, n);
  await page.waitForSelector('#verdict[data-status="404"]');
  // The environment: staging does not block the debug routes.
  n = await count(page, "decisions");
  await page.fill("#env", "staging");
  await decidedAfter(page, n);
  await page.waitForFunction(() => document.querySelector("#decision-status").textContent.includes("for environment staging"));
  assert.equal(await page.getAttribute("#verdict", "data-reason"), "host_not_allowed", "staging serves its own hosts");
  assert.equal(await page.isHidden("#env-note"), true, "staging is one of QuoteKit's environments");
  // An environment the policy does not know is flagged, not accepted silently.
  n = await count(page, "decisions");
  await page.fill("#env", "prod");
  await decidedAfter(page, n);
  await page.waitForSelector("#env-note:not([hidden])");
  assert.match(await page.textContent("#env-note"), /"prod" is not one of this policy's \(production, staging\)/);
  assert.equal(await page.getAttribute("#env", "aria-invalid"), "true");
  await page.fill("#env", "");
  // The method.
  n = await count(page, "decisions");
  await page.fill("#url", "https://lawnquote.online/api/quotes");
  await page.selectOption("#method", "DELETE");
  await decidedAfter(page, n);
  await page.waitForFunction(() => document.querySelector("#decision-status").textContent.startsWith("DELETE https://lawnquote.online/api/quotes"));
  assert.equal(await page.getAttribute("#verdict", "data-status"), "405");
  await page.selectOption("#method", "GET");
});

test("a decision that no longer matches the inputs says so, and names what it decided", async () => {
  await quotekit(page);
  let n = await count(page, "decisions");
  await page.fill("#url", "https://lawnquote.online/pricing");
  await decidedAfter(page, n);
  await page.waitForFunction(() => document.querySelector("#decision-status").textContent.startsWith("GET https://lawnquote.online/pricing:"));
  assert.equal(await data(page, "stale"), undefined);
  // A broken policy: the old decision stays, marked, with the method and URL it was for.
  await setPolicy(page, QUOTEKIT.replace('rate = "600/5m"', 'rate = "600/5min"'));
  await page.waitForFunction(() => document.documentElement.dataset.stale === "true");
  assert.match(await page.textContent("#decision-error"), /the policy has 1 error\(s\) \(first: E012 at line \d+/);
  assert.match(await page.textContent("#stale-note"), /Not the current inputs — the decision below is for GET https:\/\/lawnquote\.online\/pricing with the last policy that compiled/);
  assert.ok(await page.evaluate(() => document.querySelector("#decision").classList.contains("stale")));
  await page.screenshot({ path: join(ROOT, "target/playground-stale.png") });
  // The button beside it goes to the error's line.
  await page.click("#decision-status button[data-go-line]");
  const line = await page.evaluate(() => {
    const view = window.edgeguardPlayground.editor;
    return view.state.doc.lineAt(view.state.selection.main.head).text;
  });
  assert.match(line, /600\/5min/);
  // An empty editor and binary garbage: still flagged, never "forward → 200 ok" as if current.
  for (const text of ["", "\u0089PNG\r\n\u001a\n\u0000\u0000"]) {
    await setPolicy(page, text);
    await page.waitForFunction(() => document.documentElement.dataset.stale === "true" && document.querySelector("#decision-error"));
    assert.match(await page.textContent("#decision-error"), /the policy has \d+ error/);
  }
  // Fixing the policy decides again: fresh, unmarked.
  n = await count(page, "decisions");
  await setPolicy(page, QUOTEKIT);
  await decidedAfter(page, n);
  assert.equal(await data(page, "stale"), undefined);
  // A request that is not valid: one error, the current one, and the decision marked.
  await page.fill("#headers", "no colon here");
  await page.waitForFunction(() => document.documentElement.dataset.stale === "true");
  assert.match(await page.textContent("#request-error"), /"no colon here" is not "Name: value"/);
  await page.fill("#headers", "also wrong");
  await page.waitForFunction(() => /also wrong/.test(document.querySelector("#request-error").textContent));
  assert.doesNotMatch(await page.textContent("#request-error"), /no colon here/, "the old request error is gone");
  assert.match(await page.textContent("#stale-note"), /GET https:\/\/lawnquote\.online\/pricing/);
  n = await count(page, "decisions");
  await page.fill("#headers", "");
  await decidedAfter(page, n);
  assert.equal(await page.isHidden("#request-error"), true);
  assert.equal(await data(page, "stale"), undefined);
});

test("root causes first: errors above warnings, a count per severity, a list you can resize", async () => {
  // QuoteKit's CSP warnings come first in the file; the rate error is far below them.
  await setPolicy(page, QUOTEKIT.replace('rate = "600/5m"', 'rate = "600/5min"'));
  const items = await page.locator("#diagnostics li").evaluateAll((lis) => lis.map((li) => [li.className, li.dataset.code]));
  assert.deepEqual(items[0], ["error", "E012"], `first: ${items[0]}`);
  assert.ok(items.length > 1 && items.slice(1).every(([sev]) => sev === "warning"));
  // The three routes that use `pages` have no follow-on E050: the rate's E012 is the one error.
  assert.equal(items.filter(([, code]) => code === "E050").length, 0);
  assert.equal(await page.textContent("#count-errors"), "1 error");
  assert.match(await page.textContent("#count-warnings"), /^\d+ warnings?$/);
  const list = await page.evaluate(() => {
    const el = document.querySelector("#diagnostics");
    const first = el.querySelector("li").getBoundingClientRect();
    const box = el.getBoundingClientRect();
    return { resize: getComputedStyle(el).resize, firstVisible: first.top >= box.top && first.bottom <= box.bottom };
  });
  assert.equal(list.resize, "vertical");
  assert.ok(list.firstVisible, "the error is in view without scrolling the list");
  await setPolicy(page, QUOTEKIT);
});

for (const [what, fragment, expected] of [
  ["a changed character", "#s=abc$def", /contains "\$"/],
  ["a link cut short", null, /do not decompress: the link was cut short or altered/],
  ["an empty fragment", "#s=", /nothing after it/],
]) {
  test(`a damaged share link (${what}) is a visible error, not QuoteKit`, async () => {
    let hash = fragment;
    if (hash === null) {
      // A real link, cut in the middle.
      await quotekit(page);
      await page.click("#share");
      await page.waitForFunction(() => document.querySelector("#share-link").value.includes("#s="));
      const link = await page.inputValue("#share-link");
      hash = link.slice(link.indexOf("#"), link.indexOf("#") + 200);
    }
    const p = await open(`${baseUrl}${hash}`);
    try {
      await p.waitForSelector("#load-error:not([hidden])");
      const text = await p.textContent("#load-error");
      assert.match(text, /This share link is damaged and nothing from it was loaded/);
      assert.match(text, expected);
      assert.doesNotMatch(text, /Failed to fetch/);
      assert.equal(await p.getAttribute("#load-error", "role"), "alert");
      assert.equal(await p.evaluate(() => window.edgeguardPlayground.editor.state.doc.toString()), "", "no preset loaded in its place");
      assert.equal(await p.locator("#verdict").count(), 0, "no decision shown");
      assert.deepEqual(p.errors, []);
    } finally {
      await p.close();
    }
  });
}

test("example requests per preset: one click decides each", async () => {
  await quotekit(page);
  const labels = await page.locator("#examples button").allTextContents();
  assert.ok(labels.length >= 5, labels.join(", "));
  let n = await count(page, "decisions");
  await page.click('#examples button:has-text("blocked debug route")');
  await decidedAfter(page, n);
  await page.waitForSelector('#verdict[data-status="404"][data-reason="blocked"]');
  n = await count(page, "decisions");
  await page.click('#examples button:has-text("API, 21st request at once")');
  await decidedAfter(page, n);
  await page.waitForSelector('#verdict[data-status="429"][data-reason="rate_limited"]');
  n = await count(page, "decisions");
  await page.click('[data-preset="helmet"]');
  await decidedAfter(page, n);
  assert.deepEqual(await page.locator("#examples button").allTextContents(), ["a page", "plain http", "TRACE"]);
});

test("the decision says what it means: no origin, burst and quota apart, a Host header that is ignored, a route's policy line", async () => {
  // helmet has no origin: it must not say "forwarded to the origin".
  let n = await count(page, "decisions");
  await page.click('[data-preset="helmet"]');
  await decidedAfter(page, n);
  const facts = await page.textContent("#decision table.facts");
  assert.match(facts, /this policy defines no origin \(W080\)/);
  assert.equal(await page.locator("#forward-headers").count(), 0);
  // QuoteKit's pages limit: burst and quota are told apart.
  await quotekit(page);
  n = await count(page, "decisions");
  await page.fill("#client-ip", "198.51.100.7");
  await decidedAfter(page, n);
  assert.match(await page.textContent("#decision table.facts"), /pages: 149 more may come at once now \(the burst\); quota 600 per 300 s/);
  // The route and the limit link to their lines in the policy.
  await page.click('#decision table.facts tr:has(th:text-is("route")) button');
  const line = await page.evaluate(() => {
    const view = window.edgeguardPlayground.editor;
    return view.state.doc.lineAt(view.state.selection.main.head).text;
  });
  assert.match(line, /^path = "\/\*\*"/);
  // A Host header beside an absolute URL is ignored, and the page says so.
  n = await count(page, "decisions");
  await page.fill("#headers", "Host: evil.example");
  await decidedAfter(page, n);
  // The note is written when the decision for these headers is sent; a decision of an earlier
  // edit can land first on a busy machine, so wait for the note itself.
  await page.waitForFunction(() => !document.querySelector("#host-note").hidden);
  assert.match(await page.textContent("#host-note"), /The Host header \(evil\.example\) is ignored: the absolute URL names the host \(lawnquote\.online\)/);
  await page.fill("#headers", "");
  await page.fill("#client-ip", "");
});

test("the simulator does not count a blocked route as rate-limit refusals", async () => {
  await quotekit(page);
  await page.fill("#url", "https://lawnquote.online/api/debug-oauth");
  const runs = await count(page, "simulations");
  await page.click("#sim-run");
  await page.waitForFunction((k) => Number(document.documentElement.dataset.simulations ?? 0) > k, runs);
  assert.equal(await page.getAttribute("#sim-summary", "data-not-limited"), "true");
  assert.match(await page.textContent("#sim-summary"), /Nothing to simulate: the policy answers GET https:\/\/lawnquote\.online\/api\/debug-oauth with 404 blocked every time/);
});

test("the report card: the CSP directive by directive, uncounted bonuses marked, the tests it cannot score listed", async () => {
  await quotekit(page);
  await page.fill("#url", "https://lawnquote.online/");
  await page.click("#report-run");
  await page.waitForSelector("#grade");
  assert.equal(await page.getAttribute("#grade", "data-grade"), "B+");
  const directives = page.locator('#report-tests tr[data-test="content-security-policy"] table.csp-directives tr');
  assert.ok((await directives.count()) >= 10);
  assert.match(await page.textContent('table.csp-directives tr[data-directive="script-src"] td'), /'unsafe-inline'/);
  // QuoteKit scores 80 before bonuses: its +5/+10 rows are not counted, and say so.
  for (const name of ["referrer-policy", "cross-origin-resource-policy", "x-frame-options"]) {
    assert.equal(await page.getAttribute(`#report-tests tr[data-test="${name}"]`, "data-counted"), "false", name);
  }
  assert.match(await page.textContent('#report-tests tr[data-test="referrer-policy"] td.mod'), /not counted/);
  // Fixes name what is wrong, not what is already set (QuoteKit has object-src 'none').
  const cspFix = await page.textContent('#report-tests tr[data-test="content-security-policy"] .fix');
  assert.match(cspFix, /^fix: remove 'unsafe-inline' from script-src/);
  assert.doesNotMatch(cspFix, /object-src/);
  for (const name of ["cookies", "cross-origin-resource-sharing", "subresource-integrity"]) {
    assert.equal(await page.getAttribute(`#report-tests tr[data-test="${name}"]`, "data-result"), "not-scored", name);
  }
  // A host the policy does not serve: the redirect fix is not `[https] redirect = true`.
  await page.fill("#url", "https://unknown.example/");
  await page.click("#report-run");
  await page.waitForFunction(() => document.querySelector('#report-tests tr[data-test="redirection"] .fix')?.textContent.includes("unknown.example"));
  assert.equal(
    await page.textContent('#report-tests tr[data-test="redirection"] .fix'),
    'fix: the edge refuses http://unknown.example with 421 (host_not_allowed) before any redirect: add "unknown.example" to [app] hosts',
  );
  // helmet: A+ with bonuses counted.
  await page.click('[data-preset="helmet"]');
  await page.click("#report-run");
  await page.waitForSelector('#grade[data-grade="A+"]');
  assert.equal(await page.getAttribute('#report-tests tr[data-test="referrer-policy"]', "data-counted"), "true");
});

test("header import: three real header sets graded, a policy proposed, the grades before and after", async () => {
  await page.evaluate(() => (document.querySelector("#import-card").open = true));
  for (const [file, before, after] of [
    ["helmet.txt", ["A+", "120"], ["A+", "120"]],
    ["quotekit.txt", ["B+", "80"], ["B+", "80"]],
    ["bare.txt", ["D", "30"], ["A+", "120"]],
  ]) {
    const runs = await count(page, "imports");
    await page.fill("#import-text", readFileSync(join(ROOT, "fixtures/headers", file), "utf8"));
    await page.click("#import-run");
    await page.waitForFunction((k) => Number(document.documentElement.dataset.imports ?? 0) > k, runs);
    const grade = (id) => page.evaluate((sel) => [document.querySelector(sel).dataset.grade, document.querySelector(sel).dataset.score], id);
    assert.deepEqual(await grade("#import-before"), before, `${file} today`);
    assert.deepEqual(await grade("#import-after"), after, `${file} proposed`);
  }
  // The bare site's diff: CSP from missing to implemented, shown as better.
  assert.match(await page.textContent('#import-diff tr[data-test="content-security-policy"] td.better'), /csp-implemented-with-unsafe-inline-in-style-src-only \(0\)/);
  // Open the proposal: it compiles without errors.
  const n = await count(page, "checks");
  await page.click("#import-load");
  await page.waitForFunction((k) => Number(document.documentElement.dataset.checks ?? 0) > k && !document.documentElement.dataset.checking, n);
  assert.equal(await data(page, "errors"), "0");
  assert.match(await page.evaluate(() => window.edgeguardPlayground.editor.state.doc.toString()), /^# Proposed from pasted response headers/);
  // A HAR file, and something that is not headers.
  const har = { log: { entries: [{ request: { url: "https://shop.example/" }, response: { status: 200, headers: [{ name: "Content-Type", value: "text/html" }, { name: "X-Frame-Options", value: "DENY" }] } }] } };
  let runs = await count(page, "imports");
  await page.fill("#import-text", JSON.stringify(har));
  await page.click("#import-run");
  await page.waitForFunction((k) => Number(document.documentElement.dataset.imports ?? 0) > k, runs);
  assert.match(await page.textContent("#import-policy"), /hosts = \["shop\.example"\]/);
  assert.match(await page.textContent("#import-kept"), /X-Frame-Options: DENY/);
  await page.fill("#import-text", "<!doctype html><p>not headers</p>");
  await page.click("#import-run");
  await page.waitForSelector("#import-error");
  assert.match(await page.textContent("#import-error"), /no response headers found/);
  await quotekit(page);
});

test("download the compiled bundle: the bytes `edgeguard compile` writes, and only when the policy compiles", async () => {
  await quotekit(page);
  await page.waitForSelector("#download-bundle:not([disabled])");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-bundle")]);
  assert.equal(download.suggestedFilename(), "policy.egb");
  const mine = readFileSync(await download.path());
  const out = join(profile, "quotekit.egb");
  execFileSync(join(ROOT, "target/debug/edgeguard"), ["compile", join(ROOT, "fixtures/quotekit.toml"), "-o", out], { stdio: "ignore" });
  assert.ok(mine.equals(readFileSync(out)), "byte for byte the CLI's bundle");
  // A policy with errors has no bundle to download.
  await setPolicy(page, QUOTEKIT.replace('rate = "600/5m"', 'rate = "600/5min"'));
  // setPolicy can return on an earlier check that lands late; the errored policy's own check
  // disables the button.
  await page.waitForSelector("#download-bundle[disabled]", { timeout: 30000 });
  assert.equal(await page.isDisabled("#download-bundle"), true);
  assert.match(await page.getAttribute("#download-bundle", "title"), /fix the errors first/);
  await setPolicy(page, QUOTEKIT);
});

test("download the worker: what `edgeguard build` writes, and it serves in workerd", async () => {
  await quotekit(page);
  await page.waitForSelector("#download-worker:not([disabled])");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-worker")]);
  assert.equal(download.suggestedFilename(), "edge.zip");
  const files = unzipSync(readFileSync(await download.path()));
  const names = Object.keys(files).sort();
  assert.deepEqual(names, ["edge/edgeguard.json", "edge/engine.js", "edge/engine_bg.wasm", "edge/index.mjs", "edge/policy.egb", "edge/shell.mjs"]);
  // The CLI's directory for the same policy: every file byte for byte, the manifest but for
  // the source path it names.
  const built = join(ROOT, "build/playground-cli-worker");
  rmSync(built, { recursive: true, force: true });
  execFileSync(join(ROOT, "target/debug/edgeguard"), ["build", join(ROOT, "fixtures/quotekit.toml"), "-o", built], { stdio: "ignore" });
  for (const name of ["engine.js", "engine_bg.wasm", "index.mjs", "policy.egb", "shell.mjs"]) {
    assert.ok(Buffer.from(files[`edge/${name}`]).equals(readFileSync(join(built, name))), `${name} is the CLI's`);
  }
  const mine = JSON.parse(Buffer.from(files["edge/edgeguard.json"]).toString());
  const cli = JSON.parse(readFileSync(join(built, "edgeguard.json"), "utf8"));
  assert.equal(mine.policy.source, "policy.toml");
  assert.deepEqual({ ...mine, policy: { ...mine.policy, source: cli.policy.source } }, cli);
  // And it runs: the unzipped directory served by workerd in front of the demo origin.
  const dir = join(ROOT, "build/playground-worker");
  rmSync(dir, { recursive: true, force: true });
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, "edge"), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  const origin = await startOrigin("blue");
  const edge = await startEdge({ main: "build/playground-worker/edge/index.mjs", vars: { EDGE_ORIGINS: `*=${origin.url}` } });
  try {
    const res = await request(edge.url, "GET", "/dashboard", { headers: { host: "lawnquote.online" } });
    assert.equal(res.status, 200);
    assert.equal(one(res, "x-frame-options"), "DENY");
    assert.equal(one(res, "x-origin-name"), "blue");
  } finally {
    await edge.stop();
    await origin.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(built, { recursive: true, force: true });
  }
});

test("pasted JSON, YAML or response headers are named for what they are, not only given TOML errors", async () => {
  for (const [text, kind, said] of [
    ['{"version": 1, "headers": {"preset": "helmet"}}', "json", /This is JSON, not a policy: a policy is TOML/],
    ["version: 1\nheaders:\n  preset: helmet\n", "yaml", /This looks like YAML/],
    [readFileSync(join(ROOT, "fixtures/headers/bare.txt"), "utf8"), "headers", /paste them into “Start from a live site's headers”/],
  ]) {
    await setPolicy(page, text);
    await page.waitForSelector(`#input-warning[data-kind="${kind}"]`);
    assert.match(await page.textContent("#input-warning"), said);
    assert.ok(Number(await data(page, "errors")) >= 1, "the compiler's errors are still shown");
  }
  await setPolicy(page, QUOTEKIT);
  await page.waitForSelector("#input-warning", { state: "hidden" });
});
