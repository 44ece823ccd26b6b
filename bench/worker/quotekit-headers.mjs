// QuoteKit's response headers as fixtures/quotekit.toml makes edgeguard send them, and the
// forwarded request headers, for the JS benchmark workers (baseline-policy.mjs,
// headers-only.mjs): scripts/bench-worker.sh checks that they and edgeguard answer with the
// same headers.

const CSP_DIRECTIVES = {
  "default-src": ["'self'"],
  "base-uri": ["'self'"],
  "connect-src": [
    "'self'", "https://api.stripe.com", "https://m.stripe.network", "https://hcaptcha.com", "https://*.hcaptcha.com",
    "https://*.supabase.co", "wss://*.supabase.co", "https://us.i.posthog.com", "https://*.posthog.com",
    "https://app.formbricks.com", "wss://ws-us3.pusher.com", "https://vitals.vercel-insights.com", "https://maps.googleapis.com",
  ],
  "font-src": ["'self'", "https://fonts.gstatic.com", "data:"],
  "form-action": ["'self'"],
  "frame-ancestors": ["'none'"],
  "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com", "https://hcaptcha.com", "https://*.hcaptcha.com"],
  "img-src": ["'self'", "data:", "https:", "blob:"],
  "media-src": ["'self'", "blob:"],
  "object-src": ["'none'"],
  "script-src": [
    "'self'", "'unsafe-inline'", "'unsafe-eval'", "https://js.stripe.com", "https://m.stripe.network", "https://hcaptcha.com",
    "https://*.hcaptcha.com", "https://app.formbricks.com", "https://maps.googleapis.com", "https://*.googleapis.com",
    "https://vercel.live", "https://va.vercel-scripts.com",
  ],
  "style-src": ["'self'", "'unsafe-inline'", "https://fonts.googleapis.com"],
  "upgrade-insecure-requests": [],
  "worker-src": ["'self'", "blob:"],
  "report-uri": ["/__edge/csp-report"],
  "report-to": ["csp-endpoint"],
};
const CSP = Object.entries(CSP_DIRECTIVES)
  .map(([name, values]) => (values.length ? `${name} ${values.join(" ")}` : name))
  .join(";");

// helmet's defaults with the app's overrides, and the CSP above.
export const SECURITY_HEADERS = {
  "content-security-policy": CSP,
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "origin-agent-cluster": "?1",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
  "referrer-policy": "strict-origin-when-cross-origin",
  "reporting-endpoints": 'csp-endpoint="/__edge/csp-report"',
  "x-content-type-options": "nosniff",
  "x-dns-prefetch-control": "off",
  "x-download-options": "noopen",
  "x-frame-options": "DENY",
  "x-permitted-cross-domain-policies": "none",
  "x-xss-protection": "0",
};
export const HSTS = "max-age=31536000; includeSubDomains";
export const REMOVE = ["server", "x-powered-by"];

/** The request headers both JS policy workers forward: the client's, less its X-Forwarded-*,
 * Forwarded, X-Real-IP and X-Request-Id, plus the edge's own (https behind Cloudflare). */
export function forwardHeaders(request, ip, host, requestId) {
  return replaceForwarding(new Headers(request.headers), ip, host, requestId);
}

/** The same edit on a request's own headers (`new Request(url, {headers})`'s), in place. */
export function replaceForwarding(headers, ip, host, requestId) {
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-forwarded-") || name === "forwarded" || name === "x-real-ip" || name === "x-request-id") headers.delete(name);
  }
  headers.set("x-forwarded-for", ip);
  headers.set("x-real-ip", ip);
  headers.set("x-forwarded-proto", "https");
  headers.set("x-forwarded-host", host);
  headers.set("forwarded", `for=${ip.includes(":") ? `"[${ip}]"` : ip};host="${host}";proto=https`);
  headers.set("x-request-id", requestId);
  return headers;
}
