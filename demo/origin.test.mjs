// Self-test for demo/origin.mjs: `node --test demo/`
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const ORIGIN = fileURLToPath(new URL('./origin.mjs', import.meta.url));
const LISTENING = /^demo-origin (\S+) listening on (http:\/\/127\.0\.0\.1:(\d+))$/;

// Starts the origin on port 0 and resolves once it printed its listening line.
function start(args = []) {
  const child = spawn(process.execPath, [ORIGIN, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill(); reject(new Error(`no listening line; stderr: ${stderr}`)); }, 5000);
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      const m = LISTENING.exec(out.slice(0, nl));
      if (!m) { child.kill(); reject(new Error(`unexpected first line: ${JSON.stringify(out)}`)); return; }
      resolve({ child, name: m[1], base: m[2], port: Number(m[3]), stdout: () => out });
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited early (${code}): ${stderr}`)); });
  });
}

let origin;
before(async () => { origin = await start(['--name', 'blue']); });
after(async () => {
  if (origin.child.exitCode === null) {
    origin.child.kill('SIGTERM');
    await once(origin.child, 'exit');
  }
});

test('prints exactly the listening line and binds loopback', () => {
  assert.equal(origin.name, 'blue');
  assert.ok(origin.port > 0);
  assert.equal(origin.stdout(), `demo-origin blue listening on http://127.0.0.1:${origin.port}\n`);
});

test('GET /api/health answers ok with the Next.js-style headers', async () => {
  const res = await fetch(`${origin.base}/api/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const body = await res.json();
  assert.equal(body.status, 'healthy');
  assert.equal(body.origin, 'blue');
  assert.deepEqual(body.checks, { database: 'healthy', stripe: 'healthy', supabase: 'healthy' });
  assert.equal(res.headers.get('x-powered-by'), 'Next.js');
  assert.equal(res.headers.get('server'), 'demo-origin');
  assert.equal(res.headers.get('content-security-policy'), "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'");
  assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
  assert.equal(res.headers.get('x-origin-name'), 'blue');

  const head = await fetch(`${origin.base}/api/health`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('responses carry the two session Set-Cookie headers', async () => {
  for (const path of ['/dashboard', '/api/quotes', '/_next/static/css/app.css']) {
    const res = await fetch(`${origin.base}${path}`);
    await res.arrayBuffer();
    assert.deepEqual(res.headers.getSetCookie(), [
      'sb-demo-auth-token=refreshed; Path=/; HttpOnly; Secure; SameSite=Lax',
      'theme=light; Path=/',
    ], path);
  }
});

test('POST echo reports method, raw url, headers and the body sha256', async () => {
  const body = randomBytes(200_000);
  const sha = createHash('sha256').update(body).digest('hex');
  const res = await fetch(`${origin.base}/api/webhooks/stripe?a=1&b=%20x`, {
    method: 'POST',
    headers: { 'Stripe-Signature': 't=1,v1=abc', 'Content-Type': 'application/json' },
    body,
  });
  assert.equal(res.status, 200);
  const j = await res.json();
  assert.equal(j.origin, 'blue');
  assert.equal(j.method, 'POST');
  assert.equal(j.url, '/api/webhooks/stripe?a=1&b=%20x');
  assert.deepEqual(j.headers['stripe-signature'], ['t=1,v1=abc']);
  assert.deepEqual(j.headers['content-type'], ['application/json']);
  assert.equal(j.body_bytes, body.length);
  assert.equal(j.body_sha256, sha);
});

test('echo keeps repeated headers apart (headersDistinct)', async () => {
  const j = await new Promise((resolve, reject) => {
    const req = http.request(`${origin.base}/__echo/dup`, {
      method: 'GET',
      headers: { 'X-Dup': ['one', 'two'] }, // sent as two header lines
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve(JSON.parse(data)));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(j.headers['x-dup'], ['one', 'two']);
  assert.equal(j.body_bytes, 0);
  assert.equal(j.body_sha256, createHash('sha256').digest('hex'));
});

test('GET /fail answers 500 HTML', async () => {
  const res = await fetch(`${origin.base}/fail`);
  assert.equal(res.status, 500);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(await res.text(), /Internal Server Error/);
});

test('GET /drop resets the connection, so fetch rejects', async () => {
  await assert.rejects(fetch(`${origin.base}/drop`));
  // ...and the server is still fine afterwards.
  assert.equal((await fetch(`${origin.base}/api/health`)).status, 200);
});

test('GET /slow?ms=200 takes at least 200 ms', async () => {
  const t0 = performance.now();
  const res = await fetch(`${origin.base}/slow?ms=200`);
  assert.equal(await res.text(), 'slow done');
  assert.ok(performance.now() - t0 >= 195, 'answered too early'); // allow timer rounding
  assert.equal((await fetch(`${origin.base}/slow?ms=60001`)).status, 400);
});

test('POST /__demo/health toggles what /api/health returns', async () => {
  try {
    assert.equal((await fetch(`${origin.base}/__demo/health?status=503`, { method: 'POST' })).status, 200);
    const res = await fetch(`${origin.base}/api/health`);
    assert.equal(res.status, 503);
    assert.equal((await res.json()).origin, 'blue');
    assert.equal((await fetch(`${origin.base}/__demo/health?status=abc`, { method: 'POST' })).status, 400);
  } finally {
    await fetch(`${origin.base}/__demo/health?status=200`, { method: 'POST' });
  }
  assert.equal((await fetch(`${origin.base}/api/health`)).status, 200);
});

test('POST /__demo/health fails dependencies, delays the answer, or answers plain text', async () => {
  const post = (q) => fetch(`${origin.base}/__demo/health?${q}`, { method: 'POST' });
  try {
    assert.equal((await post('fail=stripe')).status, 200);
    let body = await (await fetch(`${origin.base}/api/health`)).json();
    assert.equal(body.status, 'degraded');
    assert.deepEqual(body.checks, { database: 'healthy', stripe: 'unhealthy', supabase: 'healthy' });
    await post('fail=database,stripe');
    const res = await fetch(`${origin.base}/api/health`);
    assert.equal(res.status, 200, 'a failing dependency leaves the HTTP status alone');
    body = await res.json();
    assert.equal(body.status, 'unhealthy');
    assert.equal(body.checks.database, 'unhealthy');
    await post('fail=&delay=250');
    const t0 = performance.now();
    body = await (await fetch(`${origin.base}/api/health`)).json();
    assert.ok(performance.now() - t0 >= 245, 'answered too early');
    assert.equal(body.status, 'healthy');
    await post('delay=0&format=text');
    const text = await fetch(`${origin.base}/api/health`);
    assert.match(text.headers.get('content-type'), /^text\/plain/);
    assert.equal(await text.text(), 'OK\n');
    await post('format=big');
    const big = await (await fetch(`${origin.base}/api/health`)).json();
    assert.ok(big.padding.length >= 1024 * 1024 && big.status === 'healthy');
    for (const bad of ['fail=redis', 'delay=-1', 'delay=10001', 'format=xml', 'nothing=1']) {
      assert.equal((await post(bad)).status, 400, bad);
    }
  } finally {
    await post('status=200&fail=&delay=0&format=json');
  }
  const state = await (await fetch(`${origin.base}/__demo/health`)).json();
  assert.deepEqual(state, { health_status: 200, failing: [], delay_ms: 0, format: 'json' });
});

test('GET /__demo/requests counts what reached the origin, /__demo controls excluded', async () => {
  const o = await start(['--name', 'counter']);
  try {
    const zero = await (await fetch(`${o.base}/__demo/requests`)).json();
    assert.deepEqual(zero, { total: 0, paths: {}, not_modified: 0, jwks_fetches: 0 });
    await (await fetch(`${o.base}/page?x=1`)).text();
    await (await fetch(`${o.base}/page`)).text();
    await (await fetch(`${o.base}/api/echo`, { method: 'POST', body: '{}' })).text();
    await (await fetch(`${o.base}/__demo/health`)).text();
    // A prerendered page asked again with its ETag: 304, counted.
    const stable = await fetch(`${o.base}/pricing?stable=1`);
    await stable.text();
    const again = await fetch(`${o.base}/pricing?stable=1`, { headers: { 'if-none-match': stable.headers.get('etag') } });
    assert.equal(again.status, 304);
    const counts = await (await fetch(`${o.base}/__demo/requests`)).json();
    assert.deepEqual(counts, { total: 5, paths: { '/page': 2, '/api/echo': 1, '/pricing': 2 }, not_modified: 1, jwks_fetches: 0 });
    assert.equal((await fetch(`${o.base}/__demo/requests`, { method: 'POST' })).status, 405);
  } finally {
    o.child.kill('SIGTERM');
    await once(o.child, 'exit');
  }
});

test('pages, static assets, the quote PDF and /big', async () => {
  const page = await fetch(`${origin.base}/dashboard`);
  assert.match(page.headers.get('content-type'), /^text\/html; charset=utf-8/);
  const html = await page.text();
  assert.match(html, /<link rel="stylesheet" href="\/_next\/static\/css\/app.css">/);
  assert.match(html, /<script>self.__next_f/);

  const css = await fetch(`${origin.base}/_next/static/css/app.css`);
  assert.equal(css.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.match(css.headers.get('content-type'), /^text\/css/);
  await css.text();

  const pdf = await fetch(`${origin.base}/api/quotes/q42/pdf`);
  assert.equal(pdf.headers.get('content-type'), 'application/pdf');
  assert.match(await pdf.text(), /^%PDF-1\.4/);

  const big = await fetch(`${origin.base}/big?bytes=200000`);
  assert.equal(big.headers.get('content-type'), 'application/octet-stream');
  const buf = Buffer.from(await big.arrayBuffer());
  assert.equal(buf.length, 200_000);
  assert.ok(buf.every((b) => b === 0x78));
});

test('refuses to bind anything but 127.0.0.1', async () => {
  const child = spawn(process.execPath, [ORIGIN, '--port', '0', '--host', '0.0.0.0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.equal(out, '');
});

test('exits cleanly on SIGTERM, even with a request in flight', async () => {
  const o = await start(['--name', 'green']);
  const pending = fetch(`${o.base}/slow?ms=60000`).then(() => 'answered', () => 'rejected');
  await new Promise((r) => setTimeout(r, 100)); // let the request reach the server
  const t0 = performance.now();
  o.child.kill('SIGTERM');
  const [code, signal] = await once(o.child, 'exit');
  assert.equal(code, 0);
  assert.equal(signal, null);
  assert.ok(performance.now() - t0 < 1500, 'shutdown took too long');
  assert.equal(await pending, 'rejected');
});

test('prerendered pages: s-maxage, Next.js Vary, an RSC payload, and cookies only for a session', async () => {
  const anon = await fetch(`${origin.base}/pricing`);
  const html = await anon.text();
  assert.equal(anon.headers.get('cache-control'), 's-maxage=31536000, stale-while-revalidate');
  assert.match(anon.headers.get('vary'), /^RSC, Next-Router-State-Tree/);
  assert.deepEqual(anon.headers.getSetCookie(), []);
  assert.match(html, /<p id="serial">served \d+<\/p>/);
  const rsc = await fetch(`${origin.base}/pricing`, { headers: { rsc: '1' } });
  assert.equal(rsc.headers.get('content-type'), 'text/x-component');
  assert.ok(Number(rsc.headers.get('x-demo-serial')) > Number(anon.headers.get('x-demo-serial')));
  const signedIn = await fetch(`${origin.base}/pricing`, { headers: { cookie: 'sb-demo-auth-token=x' } });
  await signedIn.arrayBuffer();
  assert.equal(signedIn.headers.getSetCookie().length, 2);
  const began = Date.now();
  await (await fetch(`${origin.base}/features?delay=300`)).arrayBuffer();
  assert.ok(Date.now() - began >= 290, 'delay holds the answer');
});
