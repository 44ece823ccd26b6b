// The playground page: a CodeMirror editor with the compiler's diagnostics inline, a request
// builder, the decision, a rate-limit simulator, a header report card and share links.
// Every answer comes from edgeguard's wasm (crates/playground) running in a Web Worker
// (worker.js); this file only renders. Nothing leaves the page.
import { EditorView, minimalSetup } from "codemirror";
import { lineNumbers, highlightActiveLine, highlightActiveLineGutter, keymap } from "@codemirror/view";
import { StreamLanguage, bracketMatching } from "@codemirror/language";
import { indentWithTab } from "@codemirror/commands";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { toml } from "@codemirror/legacy-modes/mode/toml";
import { linter, lintGutter, forceLinting } from "@codemirror/lint";
import { decodeState, encodeState } from "./share.js";
import { posOf, describeInput } from "./text.js";
import helmet from "../../fixtures/helmet.toml";
import strict from "../../fixtures/strict.toml";
import quotekit from "../../fixtures/quotekit.toml";

const PRESETS = {
  helmet: { policy: helmet, url: "https://example.com/" },
  strict: { policy: strict, url: "https://example.com/" },
  quotekit: { policy: quotekit, url: "https://lawnquote.online/" },
};
const LINT_DELAY_MS = 150;
const root = document.documentElement;
const $ = (sel) => document.querySelector(sel);

// ── DOM helpers (text only: policy and header values are never parsed as HTML) ──────────
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("data-")) el.setAttribute(k, String(v));
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// ── The compiler in its worker ────────────────────────────────────────────────────────────
class Compiler {
  constructor() {
    this.start();
  }

  start() {
    this.worker?.terminate();
    this.pending = new Map();
    this.nextId = 1;
    // The first worker was started by boot.js while the page was parsing.
    const boot = window.edgeguardBoot;
    window.edgeguardBoot = null;
    this.worker = boot?.worker ?? new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    // A restarted worker (or a page without boot.js) loads the wasm itself.
    if (!boot) this.worker.postMessage({ type: "init" });
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = (e) => {
        const m = e.data;
        if (m.type === "ready") {
          root.dataset.workerStartMs = (m.started - performance.timeOrigin).toFixed(1);
          if (m.fetched) root.dataset.wasmFetchedMs = (m.fetched - performance.timeOrigin).toFixed(1);
          root.dataset.wasmReadyMs = (m.at - performance.timeOrigin).toFixed(1);
          resolve(m.version);
        } else if (m.type === "fatal") reject(new Error(m.error));
        else if (m.type === "result") {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.error !== null) {
            p.reject(new Error(m.error));
            // A trap leaves the instance in an unknown state: start a fresh one.
            this.start();
          } else p.resolve({ result: JSON.parse(m.result), ms: m.ms, roundtrip: performance.now() - p.sent });
        }
      };
      this.worker.onerror = (e) => reject(new Error(e.message || "the compiler's worker failed to start"));
      for (const e of boot?.early ?? []) (e.type === "error" ? this.worker.onerror : this.worker.onmessage)(e);
    });
  }

  call(fn, ...args) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, sent: performance.now() });
      this.worker.postMessage({ id, fn, args });
    });
  }

  /// `call` that only runs the newest of overlapping requests (older ones resolve `null`).
  latest(fn) {
    let running = false;
    let queued = null;
    const pump = async () => {
      if (running || !queued) return;
      const job = queued;
      queued = null;
      running = true;
      try {
        job.resolve(await this.call(fn, ...job.args));
      } catch (e) {
        job.resolve({ result: { error: String(e.message || e) }, ms: 0, roundtrip: 0 });
      }
      running = false;
      pump();
    };
    return (...args) =>
      new Promise((resolve) => {
        queued?.resolve(null);
        queued = { args, resolve };
        pump();
      });
  }
}

const compiler = new Compiler();
const check = compiler.latest("check");
const view = compiler.latest("view");

// ── Editor ────────────────────────────────────────────────────────────────────────────────
let checks = 0;
let lastCheck = null;

function env() {
  return $("#env").value.trim();
}

async function lintSource(editor) {
  const doc = editor.state.doc;
  const source = doc.toString();
  showInputWarning(source, null);
  $("#check-status").textContent = "checking…";
  root.dataset.checking = "true";
  const answer = await check(source, env());
  if (answer === null) return []; // superseded by a newer edit
  delete root.dataset.checking;
  const { result, ms, roundtrip } = answer;
  checks += 1;
  lastCheck = result;
  root.dataset.checkMs = ms.toFixed(2);
  root.dataset.checkRoundtripMs = roundtrip.toFixed(2);
  showInputWarning(source, ms);
  if (result.error) {
    $("#check-status").textContent = result.error;
    root.dataset.checks = String(checks);
    return [];
  }
  renderDiagnostics(result, ms);
  root.dataset.errors = String(result.errors);
  root.dataset.warnings = String(result.warnings);
  root.dataset.checks = String(checks);
  if (result.errors === 0 && decisionShown && doc === editorView.state.doc) send({ quiet: true });
  return result.diagnostics.map((d) => {
    const from = posOf(doc, d.line, d.column);
    const to = Math.max(from, posOf(doc, d.end_line, d.end_column));
    return {
      from,
      to,
      severity: d.severity,
      source: d.code,
      message: `${d.code}: ${d.message}${d.help ? `\nhelp: ${d.help}` : ""}`,
      renderMessage: () =>
        h("div", { class: "lint-msg" }, h("b", { text: `${d.code} ` }), d.message, d.help ? h("div", { class: "muted", text: `help: ${d.help}` }) : null),
    };
  });
}

function renderDiagnostics(result, ms) {
  const status = $("#check-status");
  status.replaceChildren();
  if (result.errors === 0 && result.warnings === 0) status.append("✓ no problems");
  else {
    if (result.errors) status.append(h("span", { class: "errors", text: `${result.errors} error${result.errors === 1 ? "" : "s"}` }), " ");
    if (result.warnings) status.append(h("span", { class: "warnings", text: `${result.warnings} warning${result.warnings === 1 ? "" : "s"}` }));
  }
  status.append(h("span", { class: "muted", text: ` · compiled in ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` }));
  if (result.truncated) status.append(h("span", { class: "muted", text: ` · first ${result.diagnostics.length} shown` }));
  const list = $("#diagnostics");
  list.replaceChildren(
    ...result.diagnostics.map((d) =>
      h(
        "li",
        { class: d.severity, "data-line": d.line, "data-column": d.column, "data-code": d.code, title: "go to" },
        h("span", { class: "pos", text: `${d.line}:${d.column} ` }),
        h("span", { class: "code", text: `${d.code} ` }),
        d.message,
        d.help ? h("span", { class: "help", text: `help: ${d.help}` }) : null,
      ),
    ),
  );
}

$("#diagnostics").addEventListener("click", (e) => {
  const li = e.target.closest("li");
  if (!li) return;
  const pos = posOf(editorView.state.doc, Number(li.dataset.line), Number(li.dataset.column));
  editorView.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
  editorView.focus();
});

function showInputWarning(source, ms) {
  const banner = $("#input-warning");
  const text = describeInput(source, ms);
  banner.hidden = !text;
  banner.textContent = text ?? "";
  if (text) banner.dataset.kind = /binary/.test(text) ? "binary" : "size";
  else delete banner.dataset.kind;
}

const editorView = new EditorView({
  parent: $("#editor"),
  doc: "",
  extensions: [
    // minimalSetup (history, selection, highlighting, the default keymap) and a few more: no
    // autocompletion or folding, so the page has less to load before it is usable.
    minimalSetup,
    lineNumbers(),
    highlightActiveLine(),
    highlightActiveLineGutter(),
    bracketMatching(),
    highlightSelectionMatches(),
    keymap.of([...searchKeymap, indentWithTab]),
    StreamLanguage.define(toml),
    lintGutter(),
    linter(lintSource, { delay: LINT_DELAY_MS }),
  ],
});

function setPolicy(text) {
  editorView.dispatch({ changes: { from: 0, to: editorView.state.doc.length, insert: text } });
}

$("#env").addEventListener("input", () => forceLinting(editorView));

for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", () => {
    const preset = PRESETS[button.dataset.preset];
    setPolicy(preset.policy);
    $("#url").value = preset.url;
    $("#env").value = "";
    send();
  });
}

// ── Request ───────────────────────────────────────────────────────────────────────────────
function randomSeed() {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return (a & 0x1fffff) * 2 ** 32 + b; // < 2^53: exact in JSON and in JavaScript
}
$("#seed").value = String(randomSeed());

function headerLines(text, what) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(":");
    if (at < 0) throw new Error(`${what}: "${line}" is not "Name: value"`);
    out.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  }
  return out;
}

function requestFromForm() {
  const seed = Number($("#seed").value || 0);
  return {
    method: $("#method").value,
    url: $("#url").value.trim(),
    headers: headerLines($("#headers").value, "Headers"),
    cookies: $("#cookies").value.trim(),
    client_ip: $("#client-ip").value.trim(),
    repeat: Math.max(1, Number($("#repeat").value || 1)),
    at: Math.max(0, Number($("#at").value || 0)),
    seed: Number.isSafeInteger(seed) && seed >= 0 ? seed : 0,
  };
}

function originFromForm() {
  return { status: Number($("#origin-status").value || 200), headers: headerLines($("#origin-headers").value, "Origin response headers") };
}

function showRequestError(message) {
  const el = $("#request-error");
  el.hidden = !message;
  el.textContent = message ?? "";
}

let decisionShown = false;

async function send({ quiet = false } = {}) {
  let request, origin;
  try {
    request = requestFromForm();
    origin = originFromForm();
  } catch (e) {
    showRequestError(e.message);
    return;
  }
  showRequestError(null);
  const answer = await view(editorView.state.doc.toString(), env(), JSON.stringify(request), JSON.stringify(origin));
  if (answer === null) return;
  const { result } = answer;
  if (result.error) {
    if (!quiet) renderDecisionError(result);
    return;
  }
  decisionShown = true;
  renderDecision(result.explanation, result.response);
  root.dataset.decisions = String(Number(root.dataset.decisions || 0) + 1);
}

$("#request").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});

function renderDecisionError(result) {
  const box = $("#decision");
  box.replaceChildren(h("div", { class: "banner error", id: "decision-error", text: result.error }));
  if (result.diagnostics?.length) {
    box.append(h("ul", { class: "diagnostics" }, ...result.diagnostics.slice(0, 5).map((d) => h("li", { class: "error", text: `${d.line}:${d.column} ${d.code} ${d.message}` }))));
  }
}

const CHANGE_TITLES = {
  set: "set by the edge",
  replaced: "the edge replaced the origin's value",
  default: "added by the edge because the origin sent none",
  kept: "the origin's, passed through",
  appended: "added next to the origin's",
  removed: "removed by the edge",
};

/** The edge cache row: what explain's `cache` says, in a sentence (docs/caching.md). */
function cacheText(c) {
  if (!c) return null;
  if (c.mode === "bypass") return `bypassed: ${c.bypass}`;
  const parts = [`fresh ${c.edge} s`];
  if (c.stale_while_revalidate) parts.push(`stale-while-revalidate ${c.stale_while_revalidate} s`);
  if (c.stale_if_error) parts.push(`stale-if-error ${c.stale_if_error} s`);
  return `looked up and stored (${parts.join(", ")}) under ${c.key}; stores ${c.stores}`;
}

function renderDecision(e, response) {
  const box = $("#decision");
  const statusText = e.status ?? `→ ${response.status}`;
  const rows = [
    ["action", e.action],
    ["status", e.status === null ? `forwarded; the origin answers (assumed ${response.status})` : String(e.status)],
    ["reason", e.reason],
    ["route", e.route ?? "— ([defaults] or decided before routing)"],
    ["origin", e.origin ? `${e.origin}${e.lane ? ` (${e.lane.reason}${e.lane.failover ? `; retried on ${e.lane.failover} if it fails` : ""})` : ""}` : null],
    ["location", e.location],
    ["path", e.path],
    ["rate limit", e.rate_limit ? `${e.rate_limit.name}: ${e.rate_limit.remaining} of ${e.rate_limit.limit} left, full again in ${e.rate_limit.reset} s` : null],
    ["shadow", e.shadow_refused ? "a shadow-mode rule would have refused this request" : null],
    ["strict CSP", e.csp_nonce ? `${e.csp_nonce.mode}: ${e.csp_nonce.applies_to} get ${e.csp_nonce.header} with a fresh nonce where 'nonce-{nonce}' stands; other responses get the policy as written` : null],
    ["edge cache", cacheText(e.cache)],
    ["origin down", e.on_origin_failure],
    ["detail", e.detail],
  ].filter(([, v]) => v !== null && v !== undefined);
  const children = [
    h(
      "div",
      { class: "verdict", id: "verdict", "data-action": e.action, "data-status": e.status ?? "", "data-reason": e.reason },
      h("span", { class: `badge ${e.action}`, text: e.action }),
      h("span", { class: "status-code", text: statusText }),
      h("span", { class: "reason", text: e.reason }),
      e.location ? h("span", { class: "muted", text: `→ ${e.location}` }) : null,
    ),
    h("table", { class: "facts" }, ...rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { class: "v", text: v })))),
    h("h3", { text: `Response headers the client receives (${response.from_origin ? "origin's response through the edge" : "the edge's own answer"})` }),
    h(
      "table",
      { class: "headers", id: "response-headers" },
      ...response.headers.map((x) =>
        h(
          "tr",
          { class: x.change, "data-name": x.name, "data-change": x.change },
          h("th", { text: x.name }),
          h("td", { class: "v", text: x.value ?? x.origin ?? "", title: x.origin && x.change === "replaced" ? `origin sent: ${x.origin}` : null }),
          h("td", {}, h("span", { class: `chg ${x.change}`, title: CHANGE_TITLES[x.change], text: x.change })),
        ),
      ),
    ),
  ];
  if (e.action === "forward") {
    children.push(
      h("h3", { text: "Headers forwarded to the origin" }),
      h("table", { class: "headers", id: "forward-headers" }, ...Object.entries(e.forward_headers).map(([n, v]) => h("tr", {}, h("th", { text: n }), h("td", { class: "v", text: v })))),
    );
  }
  if (e.problem) children.push(h("h3", { text: "Body (application/problem+json)" }), h("pre", { id: "problem", text: JSON.stringify(e.problem, null, 2) }));
  children.push(h("details", {}, h("summary", { class: "muted", text: "explain JSON (same as edgeguard explain --format json)" }), h("pre", { id: "explain-json", text: JSON.stringify(e, null, 2) })));
  box.replaceChildren(...children);
}

// ── Rate-limit simulator ──────────────────────────────────────────────────────────────────
$("#sim-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  let request;
  try {
    request = requestFromForm();
  } catch (e) {
    showRequestError(e.message);
    return;
  }
  const count = Number($("#sim-count").value || 0);
  const rate = Number($("#sim-rate").value || 0);
  const { result } = await compiler.call("simulate", editorView.state.doc.toString(), env(), JSON.stringify(request), count, rate);
  renderSimulation(result);
});

function renderSimulation(r) {
  const box = $("#sim");
  if (r.error) {
    box.replaceChildren(h("div", { class: "banner error", text: r.error }));
    return;
  }
  const last = r.steps.at(-1);
  const span = r.rate_per_sec > 0 ? `over ${last.t.toFixed(1)} s` : "all at the same instant";
  const limit = r.limit ? `limit \`${r.limit.name}\`: ${r.limit.count} per ${r.limit.window_secs} s, burst ${r.limit.burst}${r.limit.shadow ? " (shadow: never refuses)" : ""}` : "no rate limit on this route";
  const summary = h(
    "p",
    { id: "sim-summary", "data-first-refused": r.first_refused ?? "", "data-allowed": r.allowed, "data-refused": r.refused },
    `${r.count} requests ${r.rate_per_sec > 0 ? `at ${r.rate_per_sec}/s ` : ""}${span}: `,
    h("b", { class: "legend" }, h("span", { class: "a", text: `${r.allowed} allowed` }), h("span", { class: "r", text: `${r.refused} refused` })),
    r.rate_limited !== r.refused ? ` (${r.rate_limited} by the limit)` : "",
    r.first_refused ? ` — first refusal: request #${r.first_refused}` : " — none refused",
    h("br"),
    h("small", { text: limit }),
  );
  box.replaceChildren(summary, chart(r), stepsTable(r));
  root.dataset.simulations = String(Number(root.dataset.simulations || 0) + 1);
}

function chart(r) {
  const W = 600, H = 180, L = 36, B = 22, T = 8, R = 8;
  const byTime = r.rate_per_sec > 0;
  const xs = r.steps.map((st) => (byTime ? st.t : st.n));
  const xmax = Math.max(byTime ? xs.at(-1) : r.count, 1e-9);
  const xmin = byTime ? 0 : 1;
  const x = (v) => L + ((v - xmin) / Math.max(xmax - xmin, 1e-9)) * (W - L - R);
  const y = (v) => H - B - (v / Math.max(r.count, 1)) * (H - B - T);
  let a = 0, f = 0;
  const pa = [], pr = [];
  for (const st of r.steps) {
    if (st.allowed) a++;
    else f++;
    const px = x(byTime ? st.t : st.n).toFixed(1);
    pa.push(`${px},${y(a).toFixed(1)}`);
    pr.push(`${px},${y(f).toFixed(1)}`);
  }
  const svg = s("svg", { class: "sim-chart", id: "sim-chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "allowed and refused requests over time" });
  svg.append(
    s("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    s("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    s("text", { x: L - 4, y: y(r.count) + 8, "text-anchor": "end" }, String(r.count)),
    s("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
    s("text", { x: L, y: H - 6 }, byTime ? "0 s" : "#1"),
    s("text", { x: W - R, y: H - 6, "text-anchor": "end" }, byTime ? `${xmax.toFixed(1)} s` : `#${r.count}`),
    s("polyline", { class: "allowed", points: pa.join(" ") }),
    s("polyline", { class: "refused", points: pr.join(" ") }),
  );
  if (r.first_refused) {
    const st = r.steps[r.first_refused - 1];
    const fx = x(byTime ? st.t : st.n);
    svg.append(s("line", { class: "first", x1: fx, y1: T, x2: fx, y2: H - B }), s("text", { x: fx + 3, y: T + 10 }, `#${r.first_refused}`));
  }
  const wrap = h("div", {}, h("div", { class: "legend" }, h("span", { class: "a", text: "— allowed (cumulative)" }), h("span", { class: "r", text: "— refused (cumulative)" })));
  wrap.append(svg);
  return wrap;
}

function stepsTable(r) {
  const MAX_ROWS = 1000;
  const rows = r.steps.slice(0, MAX_ROWS).map((st) =>
    h(
      "tr",
      { class: st.allowed ? "" : "refused", "data-n": st.n },
      h("td", { text: st.n }),
      h("td", { text: st.t.toFixed(3) }),
      h("td", { text: st.status ?? "→ origin" }),
      h("td", { text: st.reason }),
      h("td", { text: st.remaining ?? "" }),
      h("td", { text: st.ratelimit ?? "" }),
      h("td", { text: st.retry_after ?? "" }),
    ),
  );
  return h(
    "div",
    { class: "steps" },
    h("table", { id: "sim-steps" }, h("tr", {}, ...["#", "t (s)", "status", "reason", "remaining", "RateLimit", "Retry-After"].map((t) => h("th", { text: t }))), ...rows),
    r.steps.length > MAX_ROWS ? h("p", { class: "muted", text: `first ${MAX_ROWS} of ${r.steps.length} requests shown` }) : null,
  );
}

// ── Report card ───────────────────────────────────────────────────────────────────────────
$("#report-run").addEventListener("click", async () => {
  let request;
  try {
    request = requestFromForm();
  } catch (e) {
    showRequestError(e.message);
    return;
  }
  const { result } = await compiler.call("report_card", editorView.state.doc.toString(), env(), JSON.stringify(request));
  renderReport(result);
});

function renderReport(r) {
  const box = $("#report");
  if (r.error) {
    box.replaceChildren(h("div", { class: "banner error", text: r.error }));
    return;
  }
  const sign = (m) => (m > 0 ? `+${m}` : String(m));
  const parts = [
    h(
      "div",
      { class: "grade", id: "grade", "data-grade": r.grade, "data-score": r.score },
      h("div", { class: `letter ${r.grade[0]}`, text: r.grade }),
      h("div", {}, h("b", { text: `${r.score} / 100` }), r.score !== r.score_without_bonus ? ` (${r.score_without_bonus} before bonuses)` : r.score < 90 ? " (bonuses need 90 before them)" : "", h("br"), h("small", { text: `scored: GET ${r.scored.url} → ${r.scored.status ?? "forwarded (origin 200 assumed)"}` })),
    ),
    r.scan_aborts ? h("div", { class: "banner warn", text: r.scan_aborts }) : null,
    h(
      "table",
      { class: "tests", id: "report-tests" },
      h("tr", {}, h("th", { text: "test" }), h("th", { text: "score" }), h("th", { text: "result and fix" })),
      ...r.tests.map((t) =>
        h(
          "tr",
          { "data-test": t.name, "data-result": t.result },
          h("th", {}, h("span", { class: t.pass ? "pass" : "fail", text: t.pass ? "✓ " : "✗ " }), t.title),
          h("td", { class: `mod ${t.modifier < 0 ? "neg" : t.modifier > 0 ? "pos" : ""}`, text: sign(t.modifier) }),
          h("td", {}, t.description, t.value ? h("div", { class: "muted v", text: t.value }) : null, t.fix ? h("span", { class: "fix", text: `fix: ${t.fix}` }) : null),
        ),
      ),
    ),
    h("h3", { text: "http:// redirects" }),
    h("p", { class: "v", text: r.http_redirects.join("  →  ") }),
    h("h3", { text: `CSP findings from the compiler (${r.csp_findings.length})` }),
    h(
      "ul",
      { class: "diagnostics", id: "csp-findings" },
      ...r.csp_findings.map((d) =>
        h("li", { class: d.severity, "data-line": d.line, "data-column": d.column, "data-code": d.code }, h("span", { class: "pos", text: `${d.line}:${d.column} ` }), h("span", { class: "code", text: `${d.code} ` }), d.message, d.help ? h("span", { class: "help", text: `fix: ${d.help}` }) : null),
      ),
    ),
  ];
  box.replaceChildren(...parts.filter(Boolean));
}
$("#report").addEventListener("click", (e) => {
  const li = e.target.closest("li[data-line]");
  if (!li) return;
  const pos = posOf(editorView.state.doc, Number(li.dataset.line), Number(li.dataset.column));
  editorView.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
  editorView.focus();
});

// ── Share ─────────────────────────────────────────────────────────────────────────────────
function currentState() {
  return {
    v: 1,
    policy: editorView.state.doc.toString(),
    env: env(),
    request: {
      method: $("#method").value,
      url: $("#url").value,
      headers: $("#headers").value,
      cookies: $("#cookies").value,
      client_ip: $("#client-ip").value,
      repeat: $("#repeat").value,
      at: $("#at").value,
      seed: $("#seed").value,
    },
    origin: { status: $("#origin-status").value, headers: $("#origin-headers").value },
    sim: { count: $("#sim-count").value, rate: $("#sim-rate").value },
  };
}

function applyState(st) {
  setPolicy(String(st.policy ?? ""));
  $("#env").value = st.env ?? "";
  const r = st.request ?? {};
  const set = (sel, v) => {
    if (v !== undefined && v !== null) $(sel).value = String(v);
  };
  set("#method", r.method);
  set("#url", r.url);
  set("#headers", r.headers);
  set("#cookies", r.cookies);
  set("#client-ip", r.client_ip);
  set("#repeat", r.repeat);
  set("#at", r.at);
  set("#seed", r.seed);
  set("#origin-status", st.origin?.status);
  set("#origin-headers", st.origin?.headers);
  set("#sim-count", st.sim?.count);
  set("#sim-rate", st.sim?.rate);
}

$("#share").addEventListener("click", async () => {
  const fragment = await encodeState(currentState());
  const url = `${location.origin}${location.pathname}#s=${fragment}`;
  history.replaceState(null, "", `#s=${fragment}`);
  const field = $("#share-link");
  field.value = url;
  field.dataset.bytes = String(fragment.length);
  field.select();
  try {
    await navigator.clipboard.writeText(url);
    field.title = "copied to the clipboard";
  } catch {
    field.title = "select and copy the link";
  }
});

// ── Start ─────────────────────────────────────────────────────────────────────────────────
async function start() {
  let restored = false;
  if (location.hash.startsWith("#s=")) {
    try {
      applyState(await decodeState(location.hash.slice(3)));
      restored = true;
    } catch (e) {
      setPolicy(PRESETS.quotekit.policy);
      showRequestError(`the share link could not be read (${e.message}); showing the QuoteKit policy instead`);
    }
  } else {
    setPolicy(PRESETS.quotekit.policy);
  }
  try {
    const version = await compiler.ready;
    $("#version").textContent = `edgeguard ${version}`;
  } catch (e) {
    $("#check-status").textContent = e.message;
    root.dataset.failed = "true";
    return;
  }
  // Interactive: the editor is up and the compiler loaded (ms since navigation start).
  root.dataset.ready = performance.now().toFixed(1);
  const firstCheck = await check(editorView.state.doc.toString(), env());
  if (firstCheck) root.dataset.firstCheckMs = firstCheck.ms.toFixed(2);
  await send({ quiet: !restored });
  if (restored) root.dataset.restored = "true";
  // The first diagnostics and decision are on screen.
  root.dataset.settled = performance.now().toFixed(1);
}

window.edgeguardPlayground = { compiler, editor: editorView, send, currentState };
start();
