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
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { strToU8, zipSync } from "fflate";
import { decodeState, encodeState } from "./share.js";
import { posOf, describeInput, otherFormat } from "./text.js";
import helmet from "../../fixtures/helmet.toml";
import strict from "../../fixtures/strict.toml";
import quotekit from "../../fixtures/quotekit.toml";

const UUID = "123e4567-e89b-12d3-a456-426614174000";
/// Example requests per preset: one click fills the request and decides it.
const PRESETS = {
  helmet: {
    policy: helmet,
    url: "https://example.com/",
    examples: [
      { label: "a page", method: "GET", url: "https://example.com/" },
      { label: "plain http", method: "GET", url: "http://example.com/" },
      { label: "TRACE", method: "TRACE", url: "https://example.com/" },
    ],
  },
  strict: {
    policy: strict,
    url: "https://example.com/",
    examples: [
      { label: "a page", method: "GET", url: "https://example.com/" },
      { label: "plain http → https", method: "GET", url: "http://example.com/login" },
      { label: "unknown host", method: "GET", url: "https://evil.example/" },
    ],
  },
  quotekit: {
    policy: quotekit,
    url: "https://lawnquote.online/",
    examples: [
      { label: "home page", method: "GET", url: "https://lawnquote.online/" },
      { label: "blocked debug route", method: "GET", url: "https://lawnquote.online/api/debug-oauth" },
      { label: "cached build asset", method: "GET", url: "https://lawnquote.online/_next/static/chunks/app.js" },
      { label: "API, 21st request at once", method: "GET", url: "https://lawnquote.online/api/quotes", client_ip: "198.51.100.7", repeat: 21 },
      { label: "email a quote", method: "POST", url: `https://lawnquote.online/api/quotes/${UUID}/email`, headers: "Content-Length: 2", client_ip: "198.51.100.7" },
      { label: "bad quote id", method: "GET", url: "https://lawnquote.online/api/quotes/not-a-uuid/pdf" },
    ],
  },
};
const LINT_DELAY_MS = 150;
/// Request and environment edits decide again this long after the last keystroke.
const DECIDE_DELAY_MS = 120;
const DOCS = "https://github.com/edgeguard/edgeguard/blob/main/docs/";
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
          } else p.resolve({ result: typeof m.result === "string" ? JSON.parse(m.result) : m.result, ms: m.ms, roundtrip: performance.now() - p.sent });
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
  showEnvNote(result.environments);
  const download = $("#download-bundle");
  download.disabled = result.errors > 0;
  const worker = $("#download-worker");
  worker.disabled = result.errors > 0;
  worker.title = result.errors > 0 ? "fix the errors first" : "edge.zip: the directory `edgeguard build policy.toml -o edge` writes, ready for `wrangler deploy`";
  download.title = result.errors > 0 ? "fix the errors first: a policy with errors has no bundle" : "policy.egb: what `edgeguard compile -o policy.egb` writes and `edgeguard build` deploys";
  root.dataset.errors = String(result.errors);
  root.dataset.warnings = String(result.warnings);
  root.dataset.checks = String(checks);
  // One update model: every edit decides again, and a policy with errors marks the decision
  // on screen as not the current one.
  if (started && doc === editorView.state.doc) send();
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

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/// Errors before warnings (the compiler's order within each): the first entry is the one to fix.
function rootCausesFirst(diagnostics) {
  const rank = (d) => (d.severity === "error" ? 0 : 1);
  return diagnostics.map((d, i) => [d, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([d]) => d);
}

/// One diagnostic: a button that jumps to its line (keyboard and mouse), its help and a link
/// to where its code is documented.
function diagnosticItem(d, helpLabel = "help") {
  const section = d.severity === "error" ? "errors" : "warnings";
  return h(
    "li",
    { class: d.severity, "data-line": d.line, "data-column": d.column, "data-code": d.code },
    h(
      "button",
      { type: "button", class: "go", title: `go to line ${d.line}`, "aria-label": `${d.severity} ${d.code} at line ${d.line}, column ${d.column}: ${d.message}. Go to it.` },
      h("span", { class: "pos", text: `${d.line}:${d.column} ` }),
      h("span", { class: "code", text: `${d.code} ` }),
      d.message,
    ),
    d.help ? h("span", { class: "help", text: `${helpLabel}: ${d.help}` }) : null,
    h("a", { class: "docs", href: `${DOCS}diagnostics.md#${section}`, target: "_blank", rel: "noopener", text: `${d.code} in the docs` }),
  );
}

function renderDiagnostics(result, ms) {
  const status = $("#check-status");
  status.replaceChildren();
  if (result.errors === 0 && result.warnings === 0) status.append("✓ no problems");
  else {
    status.append(h("span", { class: "errors", id: "count-errors", text: plural(result.errors, "error") }), " · ");
    status.append(h("span", { class: "warnings", id: "count-warnings", text: plural(result.warnings, "warning") }));
  }
  status.append(h("span", { class: "muted", text: ` · compiled in ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` }));
  if (result.truncated) status.append(h("span", { class: "muted", text: ` · first ${result.diagnostics.length} shown` }));
  if (result.diagnostics.length) status.append(h("span", { class: "muted", text: " · errors first; drag the list's corner to resize it" }));
  $("#diagnostics").replaceChildren(...rootCausesFirst(result.diagnostics).map((d) => diagnosticItem(d)));
}

function goTo(line, column) {
  const pos = posOf(editorView.state.doc, line, column);
  editorView.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
  editorView.focus();
}

for (const list of ["#diagnostics", "#report", "#decision-status", "#decision"]) {
  $(list).addEventListener("click", (e) => {
    const go = e.target.closest("[data-go-line], li[data-line] .go");
    if (!go) return;
    const at = go.dataset.goLine ? go : go.closest("li");
    goTo(Number(at.dataset.goLine ?? at.dataset.line), Number(at.dataset.goColumn ?? at.dataset.column ?? 1));
  });
}

/// An environment the policy does not know compiles as the base policy: say so.
function showEnvNote(known) {
  const note = $("#env-note");
  const name = env();
  const unknown = Boolean(name && Array.isArray(known) && !known.includes(name));
  note.hidden = !unknown;
  $("#env").setAttribute("aria-invalid", String(unknown));
  if (unknown) {
    note.textContent = `Environment "${name}" is not one of this policy's (${known.join(", ") || "none"}): there is no [env.${name}] overlay, so the base policy is compiled as if for "${name}".`;
  }
}

function showInputWarning(source, ms) {
  const banner = $("#input-warning");
  const text = describeInput(source, ms);
  banner.hidden = !text;
  banner.textContent = text ?? "";
  if (text) banner.dataset.kind = /binary/.test(text) ? "binary" : (otherFormat(source) ?? "size");
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
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({ "aria-label": "Policy (TOML)", "aria-describedby": "editor-hint" }),
    lintGutter(),
    linter(lintSource, { delay: LINT_DELAY_MS }),
  ],
});

function setPolicy(text) {
  editorView.dispatch({ changes: { from: 0, to: editorView.state.doc.length, insert: text } });
}

// The linter runs on document changes only; an environment edit checks (and decides) itself.
let envTimer = null;
$("#env").addEventListener("input", () => {
  clearTimeout(envTimer);
  envTimer = setTimeout(async () => {
    const doc = editorView.state.doc;
    const diagnostics = await lintSource(editorView);
    if (doc === editorView.state.doc) editorView.dispatch(setDiagnostics(editorView.state, diagnostics));
  }, DECIDE_DELAY_MS);
});

function fillRequest(r) {
  $("#method").value = r.method ?? "GET";
  $("#url").value = r.url;
  $("#headers").value = r.headers ?? "";
  $("#cookies").value = r.cookies ?? "";
  $("#client-ip").value = r.client_ip ?? "";
  $("#repeat").value = String(r.repeat ?? 1);
}

function showExamples(name) {
  const preset = PRESETS[name];
  const box = $("#examples");
  box.dataset.preset = name ?? "";
  if (!preset) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    h("span", { class: "label", text: "Try:" }),
    ...preset.examples.map((x, i) => h("button", { type: "button", "data-example": i, title: `${x.method} ${x.url}${x.repeat > 1 ? ` ×${x.repeat}` : ""}`, text: x.label })),
  );
}

$("#examples").addEventListener("click", (e) => {
  const button = e.target.closest("[data-example]");
  if (!button) return;
  fillRequest(PRESETS[$("#examples").dataset.preset].examples[Number(button.dataset.example)]);
  send();
});

for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", () => {
    const name = button.dataset.preset;
    const preset = PRESETS[name];
    hideLoadError();
    setPolicy(preset.policy);
    fillRequest({ url: preset.url });
    $("#env").value = "";
    showExamples(name);
    scheduleDecide();
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

/** The test session's claims from the form: null when empty; an object, else an error. */
function sessionFromForm() {
  const text = $("#session").value.trim();
  if (text === "") return null;
  let claims;
  try {
    claims = JSON.parse(text);
  } catch {
    throw new Error("Test session: the claims are not valid JSON");
  }
  if (claims === null || typeof claims !== "object" || Array.isArray(claims)) throw new Error("Test session: the claims must be a JSON object");
  return claims;
}

function requestFromForm() {
  const seed = Number($("#seed").value || 0);
  return {
    session: sessionFromForm(),
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

/// The request's one problem, if it has one (always the current one: replaced on every edit).
function showRequestError(message) {
  const el = $("#request-error");
  el.hidden = !message;
  el.textContent = message ?? "";
}

/// A Host header next to an absolute URL is not what decides: the URL's host is.
function showHostNote() {
  const note = $("#host-note");
  const url = $("#url").value.trim();
  const host = /^\s*host\s*:(.*)$/im.exec($("#headers").value);
  const absolute = /^https?:\/\//i.test(url);
  note.hidden = !(host && absolute);
  if (host && absolute) {
    let named = url;
    try {
      named = new URL(url).host;
    } catch {}
    note.textContent = `The Host header (${host[1].trim()}) is ignored: the absolute URL names the host (${named}), as in \`edgeguard explain\`. Use a path (/…) to send this Host.`;
  }
}

/// The decision on screen: what it was decided for, to say so when it is no longer current.
let shown = null;
let started = false;
let decideTimer = null;

function scheduleDecide() {
  clearTimeout(decideTimer);
  decideTimer = setTimeout(send, DECIDE_DELAY_MS);
}

async function send() {
  clearTimeout(decideTimer);
  showHostNote();
  const source = editorView.state.doc.toString();
  const environment = env();
  let request, origin;
  try {
    request = requestFromForm();
    origin = originFromForm();
  } catch (e) {
    showRequestError(e.message);
    markStale(`The request is not valid: ${e.message}`);
    return;
  }
  const answer = await view(source, environment, JSON.stringify(request), JSON.stringify(origin));
  if (answer === null) return; // a newer edit is being decided
  const { result } = answer;
  if (result.error) {
    const policy = Array.isArray(result.diagnostics) && result.diagnostics.length > 0;
    showRequestError(policy ? null : result.error);
    markStale(policy ? `${result.error}.` : `The request is not valid: ${result.error}`, policy ? result.diagnostics : []);
    return;
  }
  showRequestError(null);
  showSessionHeader(source, environment, request);
  shown = { method: request.method, url: request.url, env: environment, repeat: request.repeat };
  renderDecision(result.explanation, result.response);
  renderDecisionStatus(result.explanation, result.response);
  root.dataset.decisions = String(Number(root.dataset.decisions || 0) + 1);
}

/** The header the test session was sent in, to copy into curl or a case file. */
async function showSessionHeader(source, environment, request) {
  const out = $("#session-token");
  if (request.session === null) {
    out.hidden = true;
    return;
  }
  const { result } = await compiler.call("test_session", source, environment, JSON.stringify(request));
  out.hidden = !result.header;
  $("#session-header").textContent = result.header ? `${result.header}: ${result.value}` : "";
}

$("#request").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
// Every request field decides again as you type.
for (const type of ["input", "change"]) $("#request").addEventListener(type, scheduleDecide);

function decidedFor(d) {
  return `${d.method} ${d.url}${d.repeat > 1 ? ` (request ${d.repeat} of ${d.repeat} at once)` : ""}${d.env ? ` for environment ${d.env}` : ""}`;
}

/// The inputs cannot be decided: say why, and that what is shown (if anything) is an older answer.
function markStale(reason, diagnostics = []) {
  const status = $("#decision-status");
  status.className = `decision-status ${shown ? "stale" : "none"}`;
  const first = rootCausesFirst(diagnostics)[0];
  status.replaceChildren(
    h("span", { class: "why", id: "decision-error", text: reason }),
    first ? h("button", { type: "button", class: "link", "data-go-line": first.line, "data-go-column": first.column, text: ` Go to line ${first.line}` }) : null,
    h("br"),
    shown
      ? h("span", { id: "stale-note" }, "Not the current inputs — the decision below is for ", h("code", { text: decidedFor(shown) }), " with the last policy that compiled.")
      : h("span", { id: "stale-note", text: "No decision yet." }),
  );
  $("#decision").classList.toggle("stale", Boolean(shown));
  root.dataset.stale = "true";
}

function renderDecisionStatus(e, response) {
  const status = $("#decision-status");
  status.className = "decision-status";
  const outcome = e.status === null ? `forward → origin (${response.status} assumed)` : `${e.action} → ${e.status}`;
  status.replaceChildren(h("span", { id: "decided-for", text: `${decidedFor(shown)}: ${outcome} ${e.reason}` }));
  $("#decision").classList.remove("stale");
  delete root.dataset.stale;
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

/// The 1-based line of the first line of the policy matching `re`, or null.
function lineOf(re) {
  const doc = editorView.state.doc;
  for (let i = 1; i <= doc.lines; i++) if (re.test(doc.line(i).text)) return i;
  return null;
}
const escapeRe = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/// A cell that links to the policy line defining it (when found).
function linked(text, line) {
  if (!line) return text;
  return h("span", {}, text, " ", h("button", { type: "button", class: "link", "data-go-line": line, "data-go-column": 1, title: `go to line ${line} of the policy`, text: `(line ${line})` }));
}

function rateLimitText(r, headers) {
  const w = /;w=(\d+)/.exec(headers?.["ratelimit-policy"] ?? "");
  return `${r.name}: ${r.remaining} more may come at once now (the burst); quota ${r.limit} per ${w ? `${w[1]} s` : "window"}; back to a full burst in ${r.reset} s`;
}

function renderDecision(e, response) {
  const box = $("#decision");
  const statusText = e.status ?? `→ ${response.status}`;
  const noOrigin = e.action === "forward" && !e.origin;
  const rows = [
    ["action", e.action],
    ["status", e.status !== null ? String(e.status) : noOrigin ? "forwarded — but this policy defines no origin (W080): the worker has nowhere to send it; the headers below assume an origin answered" : `forwarded; the origin answers (assumed ${response.status})`],
    ["reason", e.reason],
    ["route", e.route ? linked(e.route, lineOf(new RegExp(`^\\s*path\\s*=\\s*["']${escapeRe(e.route)}["']`))) : "— ([defaults] or decided before routing)"],
    ["origin", e.origin ? `${e.origin}${e.lane ? ` (${e.lane.reason}${e.lane.failover ? `; retried on ${e.lane.failover} if it fails` : ""})` : ""}` : null],
    ["location", e.location],
    ["path", e.path],
    ["rate limit", e.rate_limit ? linked(rateLimitText(e.rate_limit, e.response_headers), lineOf(new RegExp(`^\\s*\\[limits\\.${escapeRe(e.rate_limit.name)}\\]`))) : null],
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
    h("table", { class: "facts" }, ...rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { class: "v" }, v)))),
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
          h("td", { class: "chg-cell" }, h("span", { class: `chg ${x.change}`, title: CHANGE_TITLES[x.change], text: x.change })),
        ),
      ),
    ),
  ];
  if (e.action === "forward" && !noOrigin) {
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
  renderSimulation(result, request);
});

function renderSimulation(r, request) {
  const box = $("#sim");
  if (r.error) {
    box.replaceChildren(h("div", { class: "banner error", text: r.error }));
    return;
  }
  const otherwise = r.refused - r.rate_limited;
  const firstOther = r.steps.find((st) => !st.allowed && st.reason !== "rate_limited");
  if (otherwise === r.count && r.rate_limited === 0) {
    // Not a rate-limit question: the policy refuses this request every time.
    box.replaceChildren(
      h(
        "p",
        { id: "sim-summary", class: "banner warn", "data-first-refused": "", "data-allowed": r.allowed, "data-refused": r.refused, "data-not-limited": "true" },
        `Nothing to simulate: the policy answers ${request.method} ${request.url} with ${firstOther?.status ?? "a refusal"} ${firstOther?.reason ?? ""} every time, before any rate limit. Pick a request the edge forwards.`,
      ),
    );
    root.dataset.simulations = String(Number(root.dataset.simulations || 0) + 1);
    return;
  }
  const last = r.steps.at(-1);
  const span = r.rate_per_sec > 0 ? `over ${last.t.toFixed(1)} s` : "all at the same instant";
  const limit = r.limit ? `limit \`${r.limit.name}\`: ${r.limit.count} per ${r.limit.window_secs} s, burst ${r.limit.burst}${r.limit.shadow ? " (shadow: never refuses)" : ""}` : "no rate limit on this route";
  const summary = h(
    "p",
    { id: "sim-summary", "data-first-refused": r.first_refused ?? "", "data-allowed": r.allowed, "data-refused": r.refused },
    `${r.count} requests ${r.rate_per_sec > 0 ? `at ${r.rate_per_sec}/s ` : ""}${span}: `,
    h("b", { class: "legend" }, h("span", { class: "a", text: `${r.allowed} allowed` }), h("span", { class: "r", text: `${r.rate_limited} rate-limited` })),
    otherwise ? ` and ${otherwise} refused for another reason (${firstOther?.reason})` : "",
    r.first_refused ? ` — first refusal: request #${r.first_refused}` : " — none refused",
    r.limit ? h("span", { class: "muted", text: ` (at most ${r.limit.burst} at once, then ${r.limit.count} per ${r.limit.window_secs} s)` }) : "",
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

/// A CSP header value as one row per directive, sources one per line.
function cspTable(value) {
  const directives = value
    .split(";")
    .map((d) => d.trim())
    .filter(Boolean)
    .map((d) => {
      const [name, ...sources] = d.split(/\s+/);
      return [name, sources];
    });
  return h(
    "table",
    { class: "csp-directives", "data-directives": directives.length },
    ...directives.map(([name, sources]) => h("tr", { "data-directive": name.toLowerCase() }, h("th", { text: name }), h("td", { class: "v" }, ...sources.flatMap((x, i) => (i ? [h("br"), x] : [x]))))),
  );
}

/// The Observatory tests this card cannot score, so that their absence is not a silent pass.
const NOT_SCORED = [
  ["cookies", "Cookies", "Secure, HttpOnly and SameSite on the origin's Set-Cookie headers: not scored here, they depend on what the origin sends (edgeguard does not rewrite cookies)"],
  ["cross-origin-resource-sharing", "Cross-origin resource sharing", "Access-Control-Allow-Origin on the origin's responses: not scored here, it depends on what the origin sends"],
  ["subresource-integrity", "Subresource integrity", "integrity= on the page's external scripts: not scored here, it depends on the HTML the origin sends"],
];

function renderReport(r) {
  const box = $("#report");
  if (r.error) {
    box.replaceChildren(h("div", { class: "banner error", text: r.error }));
    return;
  }
  const sign = (m) => (m > 0 ? `+${m}` : String(m));
  const bonusesCount = r.score_without_bonus >= 90;
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
      ...r.tests.map((t) => {
        const uncounted = t.modifier > 0 && !bonusesCount;
        return h(
          "tr",
          { "data-test": t.name, "data-result": t.result, "data-counted": String(!uncounted) },
          h("th", {}, h("span", { class: t.pass ? "pass" : "fail", text: t.pass ? "✓ " : "✗ " }), t.title),
          h("td", { class: `mod ${t.modifier < 0 ? "neg" : t.modifier > 0 && !uncounted ? "pos" : ""}`, title: uncounted ? "bonuses count only when the score before them is at least 90" : null }, uncounted ? h("s", { text: sign(t.modifier) }) : sign(t.modifier), uncounted ? h("div", { class: "muted", text: "not counted" }) : null),
          h(
            "td",
            {},
            t.description,
            t.value ? (t.name === "content-security-policy" && t.value.includes(";") ? cspTable(t.value) : h("div", { class: "muted v", text: t.value })) : null,
            t.fix ? h("span", { class: "fix", text: `fix: ${t.fix}` }) : null,
          ),
        );
      }),
      ...NOT_SCORED.map(([name, title, why]) => h("tr", { "data-test": name, "data-result": "not-scored" }, h("th", { text: `– ${title}` }), h("td", { class: "mod", text: "—" }), h("td", { class: "muted", text: why }))),
    ),
    h("h3", { text: "http:// redirects" }),
    h("p", { class: "v", text: r.http_redirects.join("  →  ") }),
    h("h3", { text: `CSP findings from the compiler (${r.csp_findings.length})` }),
    h(
      "ul",
      { class: "diagnostics", id: "csp-findings" },
      ...r.csp_findings.map((d) => diagnosticItem(d, "fix")),
    ),
  ];
  box.replaceChildren(...parts.filter(Boolean));
}

// ── Header import ─────────────────────────────────────────────────────────────────────────
let proposed = null;

$("#import-file").addEventListener("change", async (e) => {
  const file = e.target.files?.[0];
  if (!file) return;
  $("#import-text").value = await file.text();
  runImport();
});
$("#import-run").addEventListener("click", () => runImport());

async function runImport() {
  const { result } = await compiler.call("import_headers", $("#import-text").value);
  renderImport(result);
}

function letter(grade, id, score) {
  return h("div", { class: "grade", id, "data-grade": grade, "data-score": score }, h("div", { class: `letter small ${grade[0]}`, text: grade }), h("b", { text: `${score}` }));
}

function renderImport(r) {
  const box = $("#import");
  proposed = null;
  if (r.error) {
    box.replaceChildren(h("div", { class: "banner error", id: "import-error", text: r.error }));
    return;
  }
  proposed = r.proposal.policy;
  const after = r.after.error ? null : r.after;
  const sign = (m) => (m > 0 ? `+${m}` : String(m));
  const cell = (x) => (x ? `${x.result} (${sign(x.modifier)})` : "not in one response");
  box.replaceChildren(
    h("p", { class: "muted", text: `Read ${r.site.headers.length} headers (${r.site.format === "har" ? `HAR, ${r.site.url}` : "curl"}${r.site.status ? `, status ${r.site.status}` : ""}).` }),
    h(
      "div",
      { class: "import-grades" },
      h("span", { text: "the site today" }),
      letter(r.before.grade, "import-before", r.before.score),
      h("span", { class: "arrow", text: "→" }),
      after ? letter(after.grade, "import-after", after.score) : h("span", { class: "banner error", text: r.after.error }),
      h("span", { text: "with the proposed policy" }),
    ),
    h(
      "table",
      { class: "diff", id: "import-diff" },
      h("tr", {}, h("th", { text: "test" }), h("th", { text: "today" }), h("th", { text: "proposed" })),
      ...r.diff.map((d) => {
        const delta = (d.after?.modifier ?? 0) - (d.before?.modifier ?? 0);
        return h("tr", { "data-test": d.name }, h("th", { text: d.title }), h("td", { class: "v", text: cell(d.before) }), h("td", { class: `v ${delta > 0 ? "better" : delta < 0 ? "worse" : ""}`, text: cell(d.after) }));
      }),
    ),
    h("h3", { text: "Kept from the site" }),
    h("ul", { class: "notes", id: "import-kept" }, ...r.proposal.kept.map((k) => h("li", { text: k }))),
    h("h3", { text: "Changed" }),
    h("ul", { class: "notes", id: "import-changed" }, ...r.proposal.changed.map((k) => h("li", { text: k }))),
    h("div", { class: "row" }, h("button", { type: "button", id: "import-load", class: "primary", text: "Open this policy in the editor" }), h("small", { class: "muted", text: "replace the placeholder origin with your app's address" })),
    h("pre", { id: "import-policy", text: proposed }),
  );
  root.dataset.imports = String(Number(root.dataset.imports || 0) + 1);
}

$("#import").addEventListener("click", (e) => {
  if (!e.target.closest("#import-load") || proposed === null) return;
  hideLoadError();
  setPolicy(proposed);
  showExamples(null);
  editorView.focus();
});

// ── Download ──────────────────────────────────────────────────────────────────────────────
$("#download-bundle").addEventListener("click", async () => {
  const { result } = await compiler.call("bundle", editorView.state.doc.toString(), env());
  if (!result || result.length === 0) return;
  save(result, "policy.egb", "application/octet-stream");
});

/** Offer `bytes` as a file named `name`. */
function save(bytes, name, type) {
  const link = h("a", { href: URL.createObjectURL(new Blob([bytes], { type })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** What `edgeguard build policy.toml -o edge` writes, zipped: the prebuilt engine and entry the
 * page was built with (www/dist/engine), this policy's bundle, and the manifest with its facts. */
$("#download-worker").addEventListener("click", async () => {
  const source = editorView.state.doc.toString();
  const [{ result: bundle }, { result: facts }] = await Promise.all([compiler.call("bundle", source, env()), compiler.call("bundle_facts", source, env())]);
  if (!bundle || bundle.length === 0 || !facts) return;
  const files = {};
  for (const name of ["index.mjs", "shell.mjs", "engine.js", "engine_bg.wasm", "edgeguard.json"]) {
    const res = await fetch(new URL(`./engine/${name}`, document.baseURI));
    if (!res.ok) {
      // A page served without its engine (not built by scripts/build-playground.sh): say so.
      const button = $("#download-worker");
      button.textContent = "Download worker (engine missing)";
      button.title = `cannot fetch the engine's ${name}: ${res.status}`;
      return;
    }
    files[name] = new Uint8Array(await res.arrayBuffer());
  }
  const manifest = JSON.parse(new TextDecoder().decode(files["edgeguard.json"]));
  const { app, environment, revision } = facts; // the worker hands JSON answers over parsed
  manifest.policy = { ...manifest.policy, source: "policy.toml", app, environment, revision };
  files["edgeguard.json"] = strToU8(`${JSON.stringify(manifest, null, 2)}\n`);
  files["policy.egb"] = bundle;
  const entries = {};
  for (const [name, bytes] of Object.entries(files)) entries[`edge/${name}`] = bytes;
  save(zipSync(entries, { level: 6 }), "edge.zip", "application/zip");
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
      session: $("#session").value,
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
  set("#session", r.session);
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
  hideLoadError();
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
function showLoadError(message) {
  const banner = $("#load-error");
  banner.hidden = false;
  banner.replaceChildren(h("b", { text: "This share link is damaged and nothing from it was loaded: " }), message, ". Ask for the link again, or start from a preset above.");
  root.dataset.shareError = "true";
}

function hideLoadError() {
  $("#load-error").hidden = true;
}

async function start() {
  let restored = false;
  if (location.hash.startsWith("#s=")) {
    try {
      applyState(await decodeState(location.hash.slice(3)));
      restored = true;
    } catch (e) {
      // Not QuoteKit in its place: an empty editor and a visible error, so nobody takes a
      // preset for the policy they were sent.
      showLoadError(e.message);
    }
  } else {
    setPolicy(PRESETS.quotekit.policy);
    showExamples("quotekit");
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
  started = true;
  await send();
  if (restored) root.dataset.restored = "true";
  // The first diagnostics and decision are on screen.
  root.dataset.settled = performance.now().toFixed(1);
}

window.edgeguardPlayground = { compiler, editor: editorView, send, currentState };
start();
