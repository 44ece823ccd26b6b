#!/usr/bin/env node
// demo/origin.mjs: a dependency-free stand-in for QuoteKit (Next.js on Fly.io) used as the
// origin behind edgeguard in local runs and end-to-end tests. node:http only, Node >= 20.
//
//   node demo/origin.mjs [--port N] [--host 127.0.0.1] [--name blue]
//
// On listen it prints exactly one line to stdout (tests parse it):
//   demo-origin <name> listening on http://127.0.0.1:<port>
// Diagnostics go to stderr. It binds the loopback address only.

import http from 'node:http';
import { createHash, generateKeyPairSync, sign as signWith } from 'node:crypto';
import zlib from 'node:zlib';

const MAX_SLOW_MS = 60_000;
const MAX_BIG_BYTES = 50 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;

const USAGE = 'usage: node demo/origin.mjs [--port N] [--host 127.0.0.1] [--name blue]';

function fail(message) {
  process.stderr.write(`demo-origin: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', name: 'blue' };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (arg !== '--port' && arg !== '--host' && arg !== '--name') fail(`unknown argument ${argv[i]}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      value = argv[++i];
    }
    opts[arg.slice(2)] = value;
  }
  const port = Number(opts.port);
  if (!/^\d+$/.test(String(opts.port)) || port > 65535) fail(`invalid --port ${opts.port}`);
  opts.port = port;
  // Loopback only: this server is a test fixture and must never be reachable from the network.
  if (opts.host === 'localhost') opts.host = '127.0.0.1';
  if (opts.host !== '127.0.0.1') fail(`--host must be 127.0.0.1 (got ${opts.host}); the demo origin binds loopback only`);
  // The name goes into a response header and the listening line: keep it to token characters.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.name)) fail(`invalid --name ${JSON.stringify(opts.name)} (use [A-Za-z0-9._-], at most 64)`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const NAME = opts.name;

// What /api/health answers, in QuoteKit's roadmap shape (`{status, checks: {database, stripe,
// supabase}}`); changed by POST /__demo/health with any of: `status=N` (the HTTP status),
// `fail=stripe,database` (those dependencies report `unhealthy`; `fail=` clears), `delay=MS`
// (answer that late; 0 clears), `format=text` (a plain-text `OK`, not JSON), `format=big` (the
// JSON padded past 1 MiB), `format=json`.
const DEPENDENCIES = ['database', 'stripe', 'supabase'];
const MAX_HEALTH_DELAY_MS = 10_000;
const STARTED = Date.now();
let healthStatus = 200;
let healthFailing = new Set();
let healthDelayMs = 0;
let healthFormat = 'json';
// When set, every request except /api/health and /__demo answers this status (a bad
// deploy that still passes its health check); POST /__demo/fail?status=N, status=0 clears.
let failStatus = 0;
// Requests received, except /__demo controls: GET /__demo/requests answers them, so tests can
// prove what the edge never forwarded. Paths are counted up to MAX_COUNTED_PATHS distinct ones.
const MAX_COUNTED_PATHS = 1000;
let requestCount = 0;
const pathCounts = new Map();

const SESSION_COOKIES = [
  'sb-demo-auth-token=refreshed; Path=/; HttpOnly; Secure; SameSite=Lax',
  'theme=light; Path=/',
];

// Headers a Next.js app behind Fly sends on every response.
function baseHeaders(res) {
  res.setHeader('X-Powered-By', 'Next.js');
  res.setHeader('Server', 'demo-origin');
  res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'");
  res.setHeader('X-Frame-Options', 'SAMEORIGIN');
  res.setHeader('X-Origin-Name', NAME);
}

// Like QuoteKit's Supabase session middleware: refresh cookies on page and /api responses.
function sessionCookies(res) {
  res.setHeader('Set-Cookie', SESSION_COOKIES);
}

function send(res, status, contentType, body, extra = {}) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', buf.length);
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.end(buf); // for HEAD, node:http sends the headers only
}

function sendJson(res, status, value, extra) {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), extra);
}

function methodNotAllowed(res, allow) {
  sendJson(res, 405, { error: 'method not allowed', allow }, { Allow: allow });
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function pageHtml(path) {
  const title = `QuoteKit demo (${escapeHtml(NAME)})`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/_next/static/css/app.css">
<script src="/_next/static/chunks/main-app.js" async></script>
</head><body>
<div id="__next"><main><h1>${title}</h1><p>Path: <code>${escapeHtml(path)}</code></p></main></div>
<script>self.__next_f=self.__next_f||[];self.__next_f.push([0]);self.__next_f.push([1,"origin:${escapeHtml(NAME)}"])</script>
</body></html>
`;
}

const STATIC_CSS = 'body{font-family:system-ui,sans-serif;margin:2rem}h1{color:#2d6a4f}\n';
const STATIC_JS = '(self.webpackChunk_N_E=self.webpackChunk_N_E||[]).push([[744],{}]);\n';

// ── /strict-demo: a Next.js-shaped page for strict CSP (issue 9, tests/e2e/strict.test.mjs) ──
// What an App Router page sends: inline bootstrap scripts, `self.__next_f.push` flight chunks
// streamed across several body chunks (one `<script>` tag split between two of them), async
// `<script src>` chunks, a module script with its modulepreload, a preload and a stylesheet, an
// inline <style>, a script that inserts another one (must run under 'strict-dynamic'), inline
// event handlers, a script the origin already gave a nonce ("evil": the edge must replace it),
// and a DOM XSS sink: the page writes its URL fragment into the document, so
// /strict-demo#<script>…</script> injects a parser-inserted script without a nonce.
// Every legitimate script pushes its name on `self.__marks`; the injected one and the handlers
// set `self.pwned`, `self.__handler`, `self.__clicked`.
//
//   /strict-demo[/anything]   the page (the same bytes under every path)
//     ?encoding=gzip|deflate|br|identity   force a content coding (default: gzip when the
//                                          request accepts it, else identity)
//     ?stream=0                 one write with Content-Length instead of timed chunks
//     ?delay=MS                 pause between chunks (default 150, at most 5000)
//   Range: bytes=…            206 with the identity bytes; If-None-Match → 304 (ETag below)
//   /strict-demo/data.json    a fixed JSON body (non-HTML: keeps the legacy CSP)
const STRICT_DEMO_ETAG = '"strict-demo-1"';
const STRICT_DEMO_CHUNKS = [
  `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>QuoteKit: strict CSP demo</title>
<script>(self.__marks=self.__marks||[]).push("inline-head");self.__next_f=self.__next_f||[]</script>
<link rel="stylesheet" href="/_next/static/css/strict-demo.css" data-precedence="next">
<link rel="preload" as="script" fetchpriority="low" href="/_next/static/chunks/strict-webpack.js">
<link rel="modulepreload" href="/_next/static/chunks/strict-module.mjs">
<style>#styled{color:rgb(45, 106, 79)}</style>
<script src="/_next/static/chunks/strict-webpack.js" async=""></script>
<script src="/_next/static/chunks/strict-main-app.js" async=""></script>
<script type="module" src="/_next/static/chunks/strict-module.mjs"></script>
<script nonce="evil">(self.__marks=self.__marks||[]).push("origin-nonce")</script>
</head><body>
<div id="__next"><main><h1 id="styled">Your quotes</h1>
<script>(self.__marks=self.__marks||[]).push("bootstrap");(self.__next_f=self.__next_f||[]).push([0])</script><scr`,
  `ipt>self.__next_f.push([1,"1:HL[\\"/_next/static/css/strict-demo.css\\",\\"style\\"]\\n"]);self.__marks.push("flight-1")</script>
<section><p>Loading quotes…</p></section>
<script>self.__next_f.push([1,"2:I[\\"app/quotes/page\\",[\\"static/chunks/app/quotes/page.js\\"],\\"default\\"]\\n"]);self.__marks.push("flight-2")</script>
`,
  `<div id="hash-view"><script>document.write(decodeURIComponent(location.hash.slice(1)));self.__marks.push("hash-view")</script></div>
<img id="broken" src="/strict-demo/missing.png" alt="" onerror="self.__handler=1">
<button id="buy" type="button" onclick="self.__clicked=1">Accept quote</button>
<script>self.__next_f.push([1,"3:[\\"$\\",\\"main\\",null,{\\"children\\":\\"quotes\\"}]\\n"]);self.__marks.push("flight-3")</script>
`,
  `<script>(function(){var s=document.createElement("script");s.textContent='self.__marks.push("dynamic-inline")';document.body.appendChild(s)})();self.__marks.push("flight-4")</script>
</main></div>
</body></html>
`,
];
const STRICT_DEMO_HTML = Buffer.from(STRICT_DEMO_CHUNKS.join(''), 'utf8');
const STRICT_DEMO_JSON = '{"quotes":[{"id":"q_1","total":"420.00","html":"<script>not markup</script>"}]}\n';
const STRICT_DEMO_ASSETS = new Map([
  ['/_next/static/css/strict-demo.css', ['text/css; charset=utf-8', '#buy{background-color:rgb(1, 2, 3)}\n']],
  ['/_next/static/chunks/strict-webpack.js', ['application/javascript; charset=utf-8',
    '(self.__marks=self.__marks||[]).push("webpack");(self.webpackChunk_N_E=self.webpackChunk_N_E||[]).push([[744],{}]);\n']],
  // Like Next.js's chunk loader: a trusted script that inserts the next chunk itself.
  ['/_next/static/chunks/strict-main-app.js', ['application/javascript; charset=utf-8',
    '(self.__marks=self.__marks||[]).push("main-app");(function(){var s=document.createElement("script");s.src="/_next/static/chunks/strict-dynamic.js";s.async=true;document.head.appendChild(s)})();\n']],
  ['/_next/static/chunks/strict-dynamic.js', ['application/javascript; charset=utf-8', '(self.__marks=self.__marks||[]).push("dynamic-src");\n']],
  ['/_next/static/chunks/strict-module.mjs', ['text/javascript; charset=utf-8', '(self.__marks=self.__marks||[]).push("module");\nexport {};\n']],
]);
const STRICT_CODINGS = { gzip: 'gzip', deflate: 'deflate', br: 'br', identity: 'identity' };

function strictCoding(url, req) {
  const forced = url.searchParams.get('encoding');
  if (forced !== null) return STRICT_CODINGS[forced] ?? null;
  return /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? '')) ? 'gzip' : 'identity';
}

function compressor(coding) {
  if (coding === 'gzip') return zlib.createGzip();
  if (coding === 'deflate') return zlib.createDeflate();
  if (coding === 'br') return zlib.createBrotliCompress();
  return null;
}

function strictDemo(url, req, res) {
  sessionCookies(res);
  if (url.pathname === '/strict-demo/data.json') return send(res, 200, 'application/json; charset=utf-8', STRICT_DEMO_JSON);
  const coding = strictCoding(url, req);
  const delay = intParam(url, 'delay', 5000);
  if (coding === null || delay === null) return sendJson(res, 400, { error: 'encoding must be gzip|deflate|br|identity, delay 0..5000' });
  res.setHeader('Cache-Control', 'private, no-cache');
  res.setHeader('ETag', STRICT_DEMO_ETAG);
  res.setHeader('Vary', 'Accept-Encoding');
  // If-None-Match compares weakly (RFC 9110 13.1.2): the edge turns the ETag weak when it
  // rewrites the page, and the browser sends that back.
  const inm = String(req.headers['if-none-match'] ?? '');
  if (inm.split(',').some((t) => t.trim().replace(/^W\//, '') === STRICT_DEMO_ETAG)) {
    res.statusCode = 304;
    return res.end();
  }
  const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
  if (range) {
    const start = Number(range[1]);
    const end = Math.min(range[2] === '' ? STRICT_DEMO_HTML.length - 1 : Number(range[2]), STRICT_DEMO_HTML.length - 1);
    if (start > end) {
      res.setHeader('Content-Range', `bytes */${STRICT_DEMO_HTML.length}`);
      return send(res, 416, 'text/plain; charset=utf-8', 'range not satisfiable\n');
    }
    return send(res, 206, 'text/html; charset=utf-8', STRICT_DEMO_HTML.subarray(start, end + 1), {
      'Content-Range': `bytes ${start}-${end}/${STRICT_DEMO_HTML.length}`,
      'Accept-Ranges': 'bytes',
    });
  }
  res.setHeader('Accept-Ranges', 'bytes');
  if (coding !== 'identity') res.setHeader('Content-Encoding', coding);
  if (url.searchParams.get('stream') === '0') {
    const sync = { gzip: zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync }[coding];
    return send(res, 200, 'text/html; charset=utf-8', sync ? sync(STRICT_DEMO_HTML) : STRICT_DEMO_HTML);
  }
  // Streamed: chunked transfer coding, one write per chunk with a pause between them; a
  // compressed stream is flushed after each chunk so the client sees each one as it goes.
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  if (req.method === 'HEAD') return res.end();
  const z = compressor(coding);
  if (z) {
    z.on('data', (c) => { if (!res.destroyed) res.write(c); });
    z.on('end', () => { if (!res.destroyed) res.end(); });
  }
  const chunks = STRICT_DEMO_CHUNKS.map((c) => Buffer.from(c, 'utf8'));
  let i = 0;
  const next = () => {
    if (res.destroyed) return z?.destroy();
    const chunk = chunks[i++];
    if (z) {
      z.write(chunk);
      z.flush(coding === 'br' ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH);
    } else res.write(chunk);
    if (i < chunks.length) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        next();
      }, delay ?? 150);
      timers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    } else if (z) z.end();
    else res.end();
  };
  next();
}

function tinyPdf(id) {
  const text = `QuoteKit demo quote ${id}`.replace(/[()\\]/g, '');
  const stream = `BT /F1 18 Tf 72 720 Td (${text}) Tj ET`;
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

// Reads the whole body, hashing as it goes (nothing is buffered). Resolves null if the
// client aborted or the stream failed.
async function hashBody(req) {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of req) {
      bytes += chunk.length;
      hash.update(chunk);
    }
  } catch {
    return null;
  }
  if (!req.complete) return null;
  return { bytes, sha256: hash.digest('hex') };
}

async function echo(req, res) {
  const body = await hashBody(req);
  if (body === null || res.destroyed) return;
  sessionCookies(res);
  sendJson(res, 200, {
    origin: NAME,
    method: req.method,
    url: req.url,
    headers: req.headersDistinct,
    body_bytes: body.bytes,
    body_sha256: body.sha256,
  });
}

// Integer query parameter in [0, max]; undefined if absent, null if invalid.
function intParam(url, key, max) {
  const raw = url.searchParams.get(key);
  if (raw === null || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) return null;
  const n = Number(raw);
  return n <= max ? n : null;
}

const timers = new Set();

function slow(url, req, res) {
  const ms = intParam(url, 'ms', MAX_SLOW_MS);
  if (ms === null) return sendJson(res, 400, { error: `ms must be an integer 0..${MAX_SLOW_MS}` });
  const timer = setTimeout(() => {
    timers.delete(timer);
    if (res.destroyed) return;
    sessionCookies(res);
    send(res, 200, 'text/plain; charset=utf-8', 'slow done');
  }, ms ?? 0);
  timers.add(timer);
  res.on('close', () => {
    clearTimeout(timer);
    timers.delete(timer);
  });
}

async function big(url, req, res) {
  const bytes = intParam(url, 'bytes', MAX_BIG_BYTES);
  if (bytes === null) return sendJson(res, 400, { error: `bytes must be an integer 0..${MAX_BIG_BYTES}` });
  const total = bytes ?? 0;
  sessionCookies(res);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Length', total);
  if (req.method === 'HEAD') return res.end();
  const chunk = Buffer.alloc(CHUNK_BYTES, 'x');
  let left = total;
  while (left > 0) {
    if (res.destroyed) return;
    const n = Math.min(left, CHUNK_BYTES);
    left -= n;
    if (!res.write(n === CHUNK_BYTES ? chunk : chunk.subarray(0, n))) {
      // Wait for drain, or give up if the client goes away.
      await new Promise((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  if (!res.destroyed) res.end();
}

function drop(req) {
  const socket = req.socket;
  // resetAndDestroy sends a TCP RST ("connection reset"); fall back to a plain destroy.
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

// Supabase Auth's stand-in: an ES256 key made at start, its JWKS where Supabase publishes it
// (GET /auth/v1/.well-known/jwks.json; `jwks_fetches` in /__demo/requests counts the reads), and
// POST /__demo/session?sub=…&role=…&expires_in=S&aud=… minting an access token signed with it
// (`{ token, cookie }`: the Bearer token and supabase-js's `sb-demo-auth-token` cookie).
// POST /__demo/jwks?rotate=1 makes a new key (old tokens then name an unknown key).
let authKey = newAuthKey();
let jwksFetches = 0;
function newAuthKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = createHash('sha256').update(JSON.stringify(publicKey.export({ format: 'jwk' }))).digest('hex').slice(0, 16);
  return { privateKey, kid, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}

function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

function mintSession(q) {
  const now = Math.floor(Date.now() / 1000);
  const expiresIn = Number(q.get('expires_in') ?? 3600);
  const claims = {
    sub: q.get('sub') ?? 'demo-user',
    aud: q.get('aud') ?? 'authenticated',
    role: 'authenticated',
    iat: now,
    exp: now + (Number.isFinite(expiresIn) ? expiresIn : 3600),
    app_metadata: { provider: 'email', ...(q.has('role') ? { role: q.get('role') } : {}) },
  };
  const header = base64url(JSON.stringify({ alg: 'ES256', kid: authKey.kid, typ: 'JWT' }));
  const input = `${header}.${base64url(JSON.stringify(claims))}`;
  const signature = signWith('sha256', Buffer.from(input), { key: authKey.privateKey, dsaEncoding: 'ieee-p1363' });
  const token = `${input}.${base64url(signature)}`;
  const session = { access_token: token, token_type: 'bearer', expires_in: expiresIn, refresh_token: 'demo', user: { id: claims.sub } };
  return { token, cookie: `sb-demo-auth-token=base64-${base64url(JSON.stringify(session))}` };
}

async function demoControl(url, req, res) {
  if (url.pathname === '/__demo/session' && req.method === 'POST') {
    await hashBody(req);
    return sendJson(res, 200, mintSession(url.searchParams));
  }
  if (url.pathname === '/__demo/jwks' && req.method === 'POST') {
    await hashBody(req);
    if (url.searchParams.get('rotate') === '1') authKey = newAuthKey();
    return sendJson(res, 200, { kid: authKey.kid, jwks_fetches: jwksFetches });
  }
  if (url.pathname === '/__demo/fail' && req.method === 'POST') {
    await hashBody(req);
    const n = Number(url.searchParams.get('status') ?? '');
    if (!(n === 0 || (n >= 500 && n <= 599))) return sendJson(res, 400, { error: 'status must be 0 or 500..599' });
    failStatus = n;
    process.stderr.write(`demo-origin ${NAME}: every request now answers ${n || 'normally'}\n`);
    return sendJson(res, 200, { fail_status: failStatus });
  }
  if (url.pathname === '/__demo/requests') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD');
    return sendJson(res, 200, { total: requestCount, paths: Object.fromEntries(pathCounts), not_modified: notModified, jwks_fetches: jwksFetches });
  }
  if (url.pathname !== '/__demo/health') {
    await hashBody(req);
    return sendJson(res, 404, { error: 'unknown demo control', path: url.pathname });
  }
  const state = () => ({ health_status: healthStatus, failing: [...healthFailing], delay_ms: healthDelayMs, format: healthFormat });
  if (req.method === 'GET' || req.method === 'HEAD') return sendJson(res, 200, state());
  if (req.method !== 'POST') return methodNotAllowed(res, 'GET, HEAD, POST');
  await hashBody(req);
  const q = url.searchParams;
  if (!['status', 'fail', 'delay', 'format'].some((k) => q.has(k))) return sendJson(res, 400, { error: 'give status, fail, delay or format' });
  // Validate everything before changing anything.
  const raw = q.get('status');
  const n = Number(raw);
  if (raw !== null && (!/^\d{3}$/.test(raw) || n < 200 || n > 599)) return sendJson(res, 400, { error: 'status must be 200..599' });
  const fail = q.get('fail');
  const failing = fail === null ? null : fail.split(',').map((d) => d.trim()).filter(Boolean);
  if (failing && failing.some((d) => !DEPENDENCIES.includes(d))) return sendJson(res, 400, { error: `fail takes ${DEPENDENCIES.join(', ')}` });
  const delay = q.get('delay');
  if (delay !== null && !(/^\d+$/.test(delay) && Number(delay) <= MAX_HEALTH_DELAY_MS)) return sendJson(res, 400, { error: `delay must be 0..${MAX_HEALTH_DELAY_MS}` });
  const format = q.get('format');
  if (format !== null && !['json', 'text', 'big'].includes(format)) return sendJson(res, 400, { error: 'format must be json, text or big' });
  if (raw !== null) healthStatus = n;
  if (failing) healthFailing = new Set(failing);
  if (delay !== null) healthDelayMs = Number(delay);
  if (format !== null) healthFormat = format;
  process.stderr.write(`demo-origin ${NAME}: /api/health now ${JSON.stringify(state())}\n`);
  return sendJson(res, 200, state());
}

/** The roadmap's health answer: the database failing makes the app unhealthy, another dependency degraded. */
function healthBody() {
  const checks = Object.fromEntries(DEPENDENCIES.map((d) => [d, healthFailing.has(d) ? 'unhealthy' : 'healthy']));
  let status = 'healthy';
  if (healthStatus >= 400 || checks.database === 'unhealthy') status = 'unhealthy';
  else if (healthFailing.size > 0) status = 'degraded';
  return {
    status,
    timestamp: new Date().toISOString(),
    version: '0.0.0-demo',
    environment: 'demo',
    uptime: Math.round((Date.now() - STARTED) / 1000),
    origin: NAME,
    checks,
  };
}

async function handle(req, res) {
  baseHeaders(res);
  let url;
  try {
    url = new URL(req.url, 'http://127.0.0.1');
  } catch {
    return sendJson(res, 400, { error: 'bad request target' });
  }
  const path = url.pathname;
  const method = req.method;
  const isGet = method === 'GET' || method === 'HEAD';

  if (path === '/__demo' || path.startsWith('/__demo/')) return demoControl(url, req, res);
  if (path === '/auth/v1/.well-known/jwks.json' && isGet) {
    jwksFetches++;
    return sendJson(res, 200, { keys: [authKey.jwk] }, { 'Cache-Control': 'public, max-age=600' });
  }
  requestCount++;
  if (pathCounts.has(path) || pathCounts.size < MAX_COUNTED_PATHS) pathCounts.set(path, (pathCounts.get(path) ?? 0) + 1);
  if (failStatus && path !== '/api/health') {
    await hashBody(req);
    return sendJson(res, failStatus, { error: 'failing on purpose', origin: NAME });
  }
  if (path === '/__echo' || path.startsWith('/__echo/')) return echo(req, res);

  if (path === '/api' || path.startsWith('/api/')) {
    if (path === '/api/health') {
      if (!isGet) return methodNotAllowed(res, 'GET, HEAD');
      sessionCookies(res);
      if (healthDelayMs) await new Promise((resolve) => setTimeout(resolve, healthDelayMs));
      if (res.destroyed) return;
      if (healthFormat === 'text') return send(res, healthStatus, 'text/plain; charset=utf-8', 'OK\n', { 'Cache-Control': 'no-store' });
      if (healthFormat === 'big') return sendJson(res, healthStatus, { ...healthBody(), padding: 'x'.repeat(1024 * 1024) }, { 'Cache-Control': 'no-store' });
      return sendJson(res, healthStatus, healthBody(), { 'Cache-Control': 'no-store' });
    }
    const pdf = /^\/api\/quotes\/([^/]+)\/pdf$/.exec(path);
    if (pdf) {
      if (!isGet) return methodNotAllowed(res, 'GET, HEAD');
      sessionCookies(res);
      const id = decodeURIComponentSafe(pdf[1]).replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
      return send(res, 200, 'application/pdf', tinyPdf(id), {
        'Content-Disposition': `inline; filename="quote-${id}.pdf"`,
        'Cache-Control': 'private, no-store',
      });
    }
    // /api/webhooks/stripe and every other /api route: echo.
    return echo(req, res);
  }

  if (!isGet) return methodNotAllowed(res, 'GET, HEAD');

  if (path === '/strict-demo' || path.startsWith('/strict-demo/')) return strictDemo(url, req, res);

  switch (path) {
    case '/slow':
      return slow(url, req, res);
    case '/fail':
      sessionCookies(res);
      return send(res, 500, 'text/html; charset=utf-8',
        '<!DOCTYPE html><html><head><title>500: Internal Server Error</title></head><body><h1>500</h1><p>Internal Server Error.</p></body></html>\n');
    case '/drop':
      return drop(req);
    case '/big':
      return big(url, req, res);
    default:
      break;
  }

  if (path.startsWith('/_next/static/')) {
    const immutable = { 'Cache-Control': 'public, max-age=31536000, immutable' };
    // Set-Cookie on a static asset too, so tests can prove the edge strips it before caching.
    sessionCookies(res);
    const asset = STRICT_DEMO_ASSETS.get(path);
    if (asset) return send(res, 200, asset[0], asset[1], immutable);
    if (path.endsWith('.css')) return send(res, 200, 'text/css; charset=utf-8', STATIC_CSS, immutable);
    if (path.endsWith('.js') || path.endsWith('.mjs')) {
      return send(res, 200, 'application/javascript; charset=utf-8', STATIC_JS, immutable);
    }
    return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  if (MARKETING_PAGES.has(path)) return marketingPage(path, req, res);
  sessionCookies(res);
  return send(res, 200, 'text/html; charset=utf-8', pageHtml(path), {
    'Cache-Control': 'private, no-cache, no-store, max-age=0, must-revalidate',
  });
}

// Pages Next.js prerenders (no per-user data): answered as `next start` answers a static page —
// `s-maxage` and Next.js's Vary, an RSC payload for `RSC: 1` requests — and with the session
// middleware's Set-Cookie only when the request carries a Supabase session to refresh. Each
// answer is numbered (X-Demo-Serial, and in the body) so tests can tell a stored copy from a
// new one.
const MARKETING_PAGES = new Set(['/', '/pricing', '/features']);
let marketingServed = 0;
// 304s answered to If-None-Match (GET /__demo/requests: `not_modified`).
let notModified = 0;
function marketingPage(path, req, res) {
  // ?delay=MS holds the answer (at most 5 s): concurrent requests for one page overlap.
  const delay = intParam(new URL(req.url, 'http://127.0.0.1'), 'delay', 5000);
  if (delay) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) marketingPage(path, { ...req, url: path, headers: req.headers }, res);
    }, delay);
    timers.add(timer);
    return;
  }
  marketingServed++;
  if (/(^|;\s*)sb-[^=]*-auth-token/.test(String(req.headers.cookie ?? ''))) sessionCookies(res);
  // ?stable=1: the same bytes every time, with an ETag that says so, and 304 to If-None-Match.
  if (new URL(req.url, 'http://127.0.0.1').searchParams.get('stable') === '1') {
    const etag = `"stable-${path.slice(1) || 'home'}"`;
    res.setHeader('Cache-Control', 's-maxage=31536000, stale-while-revalidate');
    res.setHeader('ETag', etag);
    if (String(req.headers['if-none-match'] ?? '').split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      notModified++;
      res.statusCode = 304;
      return res.end();
    }
    return send(res, 200, 'text/html; charset=utf-8', pageHtml(path));
  }
  const extra = {
    'Cache-Control': 's-maxage=31536000, stale-while-revalidate',
    Vary: 'RSC, Next-Router-State-Tree, Next-Router-Prefetch, Next-Router-Segment-Prefetch, Accept-Encoding',
    'X-Demo-Serial': String(marketingServed),
    ETag: `"page-${marketingServed}"`,
  };
  if (req.headers.rsc === '1') {
    return send(res, 200, 'text/x-component', `0:["$","main",null,{"path":${JSON.stringify(path)},"serial":${marketingServed}}]\n`, extra);
  }
  return send(res, 200, 'text/html; charset=utf-8', pageHtml(path).replace('</main>', `<p id="serial">served ${marketingServed}</p></main>`), extra);
}

function decodeURIComponentSafe(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const server = http.createServer();
const sockets = new Set();

server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('error', () => {}); // ECONNRESET / EPIPE from clients are expected here
  socket.on('close', () => sockets.delete(socket));
});

server.on('request', (req, res) => {
  req.on('error', () => {});
  res.on('error', () => {});
  handle(req, res).catch((err) => {
    process.stderr.write(`demo-origin ${NAME}: handler error: ${err?.stack ?? err}\n`);
    if (!res.headersSent && !res.destroyed) {
      try {
        sendJson(res, 500, { error: 'demo origin handler error' });
        return;
      } catch {
        // fall through
      }
    }
    res.destroy();
  });
});

// Malformed requests: answer 400 when the socket can still take it, never crash.
server.on('clientError', (err, socket) => {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

server.on('error', (err) => {
  process.stderr.write(`demo-origin ${NAME}: ${err.message}\n`);
  process.exit(1);
});

server.listen({ port: opts.port, host: opts.host }, () => {
  const { port } = server.address();
  process.stdout.write(`demo-origin ${NAME} listening on http://127.0.0.1:${port}\n`);
});

let shuttingDown = false;
function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  process.stderr.write(`demo-origin ${NAME}: ${signal}, shutting down\n`);
  for (const t of timers) clearTimeout(t);
  timers.clear();
  server.close(() => process.exit(0));
  for (const s of sockets) s.destroy();
  server.closeAllConnections?.();
  // Should not be needed, but never hang a test run on shutdown.
  setTimeout(() => process.exit(0), 2000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
