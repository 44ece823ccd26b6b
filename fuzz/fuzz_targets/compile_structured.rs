//! The compiler on structure-aware policies: an `arbitrary` description of tables, keys and
//! values drawn from the real key set (and plausible values for each key) rendered as TOML, so
//! most inputs get past the parser and the schema check into validation and lowering.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use edgeguard_compiler::{Options, compile};
use libfuzzer_sys::fuzz_target;

/// Keys of each table of the language, with values worth trying (TOML literals).
type Keys = &'static [(&'static str, &'static [&'static str])];

const NAMES: &[&str] = &["api", "pages", "login", "blue", "green", "metrics", "none", "a", "production", "staging"];

const APP: Keys = &[
    ("name", &["\"quotekit\"", "\"\"", "\"a b\""]),
    ("environment", &["\"production\"", "\"staging\"", "\"\"", "\"dev\""]),
    ("hosts", &["[\"lawnquote.online\", \"www.lawnquote.online\"]", "[]", "[\"a..b\"]", "[\"LawnQuote.online.\"]", "[\"[::1]\"]", "[\"x:80\"]"]),
    ("canonical_host", &["\"lawnquote.online\"", "\"www.lawnquote.online\"", "\"other.example\"", "\"\""]),
];
const CLIENT_IP: Keys = &[
    ("from", &["\"cf-connecting-ip\"", "\"x-forwarded-for\"", "\"bad header\"", "\"\""]),
    ("request_id_from", &["\"cf-ray\"", "\"x-request-id\"", "\"\""]),
];
const SANITIZE: Keys = &[
    ("max_url", &["\"8KiB\"", "\"0B\"", "\"1B\"", "\"99999999GiB\"", "\"12\"", "\"1.5KiB\""]),
    ("max_header_bytes", &["\"32KiB\"", "\"0\"", "\"1TiB\"", "\"-1KiB\""]),
    ("max_headers", &["100", "0", "-1", "4294967296", "9223372036854775807", "\"100\""]),
];
const HTTPS: Keys = &[
    ("redirect", &["true", "false", "\"yes\""]),
    ("hsts", &["{ max_age = \"1y\", include_subdomains = true, preload = false }", "{ max_age = \"0s\" }", "{ max_age = \"1y\", preload = true }", "false", "{ max_age = \"999999999999d\" }"]),
];
const HEADERS: Keys = &[
    ("preset", &["\"helmet\"", "\"none\"", "\"strict\"", "\"owasp\""]),
    ("remove", &["[\"X-Powered-By\", \"Server\"]", "[\"Set-Cookie\"]", "[\"Content-Security-Policy\"]", "[\"strict-transport-security\"]", "[\"bad name\"]"]),
    ("set", &["{ \"X-Frame-Options\" = \"DENY\" }", "{ \"Content-Security-Policy\" = \"default-src 'none'\" }", "{ \"X-A\" = \"a\\nb\" }", "{ \"\" = \"x\" }", "{ \"Cache-Control\" = \"no-store\" }"]),
    ("default", &["{ \"Referrer-Policy\" = \"no-referrer\" }", "{ \"X-A\" = \"\" }", "{ \"Set-Cookie\" = \"a=b\" }"]),
];
const CSP: Keys = &[
    ("mode", &["\"enforce\"", "\"report-only\"", "\"off\"", "\"bogus\""]),
    ("report_to", &["\"/__edge/csp-report\"", "\"https://r.example/csp\"", "\"relative\"", "\"\""]),
    ("directives", &[
        "{ default-src = [\"'self'\"], object-src = [\"'none'\"] }",
        "{ script-src = [\"'unsafe-inline'\", \"https://*.example.com\", \"'nonce-abc'\"] }",
        "{ upgrade-insecure-requests = true }",
        "{ frame-ancestors = [\"'none'\"], base-uri = [\"'self'\"], bogus-src = [\"x\"] }",
        "{ img-src = [\"data:\", \"https:\", \"*\"] }",
        "{ default-src = [] }",
        "{ script-src = [\"'sha256-abc='\", \"'strict-dynamic'\"] }",
    ]),
];
const RULES: Keys = &[
    ("path", &["\"/**\"", "\"/api/**\"", "\"/api/quotes/:id/pdf\"", "\"/api/debug-*\"", "\"/api/*-test\"", "\"/u/[id]\"", "\"/\"", "\"/a//b\"", "\"/a/../b\"", "\"api\"", "\"/a/**/b\"", "\"/__edge/health\"", "\"/a/:x/:x\"", "\"/caf\u{e9}\"", "\"/a%2Fb\"", "\"/a/*\"", "\"/a/:x\""]),
    ("methods", &["[\"GET\", \"HEAD\"]", "[\"POST\"]", "[]", "[\"get\"]", "[\"BREW\"]", "[\"GET\", \"GET\"]", "[\"CONNECT\", \"TRACE\", \"OPTIONS\"]"]),
    ("params", &["{ id = \"uuid\" }", "{ id = \"int\" }", "{ id = \"slug\" }", "{ id = \"re:(in|sub)_[A-Za-z0-9_-]+\" }", "{ id = \"re:(\" }", "{ id = \"re:.*\" }", "{ x = \"int\" }", "{ id = \"float\" }", "{ id = \"re:a{99999}\" }"]),
    ("block", &["404", "403", "200", "0", "999", "true", "\"404\""]),
    ("only_in", &["[\"production\"]", "[\"staging\"]", "[]", "[\"nowhere\"]"]),
    ("except_in", &["[\"production\"]", "[\"staging\"]"]),
    ("require_headers", &["[\"stripe-signature\"]", "[\"bad header\"]", "[]", "[\"Host\"]"]),
    ("require_cookie", &["\"sb-*-auth-token*\"", "\"\"", "\"*\"", "\"a b\"", "\"session\""]),
    ("require_session", &["\"a\"", "\"missing\"", "{ source = \"a\", claims = { \"app_metadata.role\" = \"admin\" } }", "{ claims = { role = [\"a\", \"b\"] } }", "{ claims = { \"\" = [] } }", "{ source = \"b\", claims = { \"user_metadata.x\" = \"y\" } }", "1"]),
    ("api_key", &["\"metrics\"", "\"missing\"", "\"\""]),
    ("ip_allow", &["[\"203.0.113.0/24\"]", "[\"::1/128\", \"10.0.0.0/8\"]", "[\"300.0.0.0/8\"]", "[\"10.0.0.1/33\"]", "[\"0.0.0.0/0\"]", "[\"fe80::/129\"]", "[]"]),
    ("ip_deny", &["[\"198.51.100.0/24\"]", "[\"::/0\"]", "[\"1.2.3.4\"]", "[\"x\"]"]),
    ("max_body", &["\"1MiB\"", "\"0\"", "\"10MiB\"", "\"18446744073709551615B\"", "\"99999999999TiB\"", "\"1.5MB\"", "1024"]),
    ("limit", &["\"api\"", "\"none\"", "\"pages\"", "\"missing\"", "{ rate = \"10/1m\", burst = 2, key = \"header:x-api-key\" }", "{ rate = \"0/1m\" }", "{ rate = \"1/0s\" }", "{ rate = \"18446744073709551615/1ns\" }"]),
    ("cache", &["\"no-store\"", "\"public, max-age=31536000, immutable\"", "\"a\\r\\nb\"", "\"\"", "{ edge = \"1h\", stale_if_error = \"1d\" }", "{ stale_while_revalidate = \"1m\" }", "{ edge = \"1.5s\", credentialed = true }", "{ }", "{ edge = \"365d\", control = \"no-store\" }"]),
    ("origin", &["\"blue\"", "\"green\"", "\"missing\""]),
    ("headers", &["{ remove = [\"Set-Cookie\"] }", "{ set = { \"X-A\" = \"1\" } }", "{ preset = \"helmet\" }", "{ default = { \"X-B\" = \"2\" } }"]),
    ("csp", &["{ mode = \"report-only\" }", "{ directives = { script-src = [\"'none'\"] } }", "{ mode = \"off\" }"]),
    ("bots", &["{ search_engine = \"allow\", ai_crawler = \"deny\" }", "{ script = \"api\" }", "{ script = \"missing\" }", "{ browser = \"deny\" }", "{ unknown = \"none\" }", "{ }"]),
    ("geo_allow", &["{ countries = [\"US\", \"CA\"] }", "{ continents = [\"EU\"], asns = [13335] }", "{ countries = [\"UK\"] }", "{ asns = [0, -1, 4294967296] }", "{ }"]),
    ("geo_deny", &["{ countries = [\"CU\", \"IR\", \"KP\", \"SY\"] }", "{ continents = [\"Europe\"] }", "{ countries = [\"\", \"USA\"] }"]),
];
const LIMIT: Keys = &[
    ("rate", &["\"100/15m\"", "\"5/1h\"", "\"1/1s\"", "\"0/1m\"", "\"10/0s\"", "\"100000/1s\"", "\"1/365d\"", "\"18446744073709551615/1s\"", "\"1/18446744073709551615d\"", "\"x/y\"", "\"10/1fortnight\""]),
    ("burst", &["20", "1", "0", "-1", "4294967296", "18446744073709551615", "9223372036854775807"]),
    ("key", &["\"ip\"", "\"ip+route\"", "\"header:x-api-key\"", "\"cookie:session\"", "\"header:\"", "\"cookie:a b\"", "\"user\"", "\"session:sub\"", "\"session:a:app_metadata.role\"", "\"session:\"", "\"session:a..b\""]),
    ("scope", &["\"local\"", "\"global\"", "\"cloudflare\"", "\"planet\""]),
    ("mode", &["\"enforce\"", "\"shadow\"", "\"off\""]),
    ("on_error", &["\"allow\"", "\"deny\"", "\"maybe\""]),
    ("geo", &["{ countries = [\"US\"] }", "{ continents = [\"XX\"] }", "{ }"]),
];
const LIMITER: Keys = &[
    ("max_keys", &["100000", "0", "1", "4294967295", "4294967296", "-5"]),
    ("global_shards", &["16", "0", "1", "65536", "4294967296"]),
];
const API_KEY: Keys = &[
    ("header", &["\"x-api-key\"", "\"authorization\"", "\"bad header\"", "\"\""]),
    ("sha256", &["[\"f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a\"]", "[]", "[\"abc\"]", "[\"F449E8D17B6F79DD2781F6B03268F5FB48D739D96F0C6A4572E9A42D4A00112A\"]"]),
];
const ORIGIN: Keys = &[
    ("url", &["\"https://quotekit-blue.fly.dev\"", "\"http://127.0.0.1:8080\"", "\"ftp://x\"", "\"https://x/path?q\"", "\"\"", "\"https://[::1]:99999\""]),
    ("timeout", &["\"10s\"", "\"0s\"", "\"1ms\"", "\"100000d\"", "\"10\""]),
];
const DEPLOY: Keys = &[
    ("active", &["\"blue\"", "\"green\"", "\"missing\""]),
    ("canary", &["{ origin = \"green\", percent = 0 }", "{ origin = \"green\", percent = 5.5 }", "{ origin = \"blue\", percent = 100 }", "{ origin = \"green\", percent = 101 }", "{ origin = \"green\", percent = -1 }", "{ origin = \"green\", percent = nan }", "{ origin = \"green\", percent = 1e308 }"]),
    ("sticky_cookie", &["\"eg_lane\"", "\"\"", "\"a b\""]),
    ("failover", &["true", "false"]),
    ("failover_methods", &["[\"GET\", \"HEAD\"]", "[\"POST\"]", "[]"]),
];
const HEALTH: Keys = &[
    ("path", &["\"/__edge/health\"", "\"/\"", "\"relative\"", "\"/a/../b\""]),
    ("probe_path", &["\"/api/health\"", "\"\"", "\"/x?y\""]),
    ("timeout", &["\"2s\"", "\"0s\"", "\"1d\""]),
    ("cache", &["\"10s\"", "\"0s\"", "\"-1s\""]),
    ("warn_after", &["\"100ms\"", "\"0ms\"", "\"2s\"", "\"fast\""]),
];

const CACHE: Keys = &[
    ("version", &["\"1\"", "\"\"", "\"a b\"", "1"]),
    ("personal_cookies", &["[\"sb-*-auth-token*\"]", "[\"*\"]", "[]", "[\"a b\"]"]),
    ("personal_headers", &["[\"x-tenant\"]", "[\"bad header\"]", "[]"]),
];
const FALLBACK: Keys = &[
    ("page", &["\"<!doctype html><p>down</p>\"", "\"text\"", "\"<html><script></script>\"", "\"\""]),
    ("page_file", &["\"fallback.html\"", "\"\"", "\"/etc/passwd\""]),
    ("retry_after", &["\"1m\"", "\"0s\"", "\"soon\""]),
];
const SESSIONS: Keys = &[
    ("cookie", &["\"sb-*-auth-token\"", "\"\"", "\"a b\""]),
    ("bearer", &["true", "false"]),
    ("jwks_url", &["\"https://x.supabase.co/auth/v1/.well-known/jwks.json\"", "\"http://127.0.0.1:54321/jwks\"", "\"ftp://x\"", "\"\""]),
    ("secret", &["\"SUPABASE_JWT_SECRET\"", "\"lowercase\"", "\"1X\"", "\"\""]),
    ("algorithms", &["[\"ES256\"]", "[\"HS256\", \"RS256\"]", "[\"none\"]", "[]", "[\"es256\"]"]),
    ("issuer", &["\"https://x.supabase.co/auth/v1\"", "\"\""]),
    ("audience", &["\"authenticated\"", "[\"a\", \"b\"]", "[]", "1"]),
    ("leeway", &["\"30s\"", "\"1h\"", "\"-1s\"", "\"0s\""]),
    ("jwks_cache", &["\"10m\"", "\"0s\"", "\"1y\""]),
    ("test_secret", &["\"a-test-secret-long-enough\"", "\"short\""]),
];
const MAINTENANCE: Keys = &[
    ("allow_ips", &["[\"203.0.113.0/24\"]", "[\"x\"]", "[]"]),
    ("bypass_header", &["\"x-maintenance-bypass\"", "\"bad header\"", "\"\""]),
    ("retry_after", &["\"10m\"", "\"-1s\""]),
];
const STATS: Keys = &[
    ("flush", &["\"5s\"", "\"0s\"", "\"1h\"", "\"soon\""]),
    ("minute", &["\"1m\"", "\"500ms\"", "\"1ms\""]),
    ("dashboard", &["\"/__edge/dashboard\"", "false", "true", "\"/__edge/metrics\"", "\"relative\""]),
];
const SLO: Keys = &[
    ("routes", &["[\"/api/**\"]", "[]", "[\"/nope\"]", "[\"/**\"]"]),
    ("availability", &["99.9", "100", "-1", "nan"]),
    ("latency", &["{ percentile = 95, max = \"200ms\" }", "{ percentile = 101, max = \"0ms\" }", "{ max = \"1s\", of = \"edge\" }", "{}"]),
    ("window", &["\"30d\"", "\"1m\"", "\"1y\""]),
    ("alerts", &["[\"page\"]", "[]", "[\"page\", \"ticket\"]"]),
];
const ALERTS: Keys = &[
    ("slack", &["\"EDGE_ALERT_SLACK_URL\"", "\"https://hooks.slack.com/x\"", "\"\""]),
    ("webhook", &["\"EDGE_ALERT_WEBHOOK_URL\"", "\"1BAD\""]),
    ("webhook_token", &["\"EDGE_ALERT_WEBHOOK_TOKEN\""]),
    ("posthog", &["true", "false"]),
];

/// Tables: (header, whether it is a map of named entries, keys).
const SHIELD: Keys = &[
    ("mode", &["\"enforce\"", "\"shadow\"", "\"off\""]),
    ("threshold", &["5", "1", "0", "1001", "-1", "4294967296"]),
    ("window", &["\"1m\"", "\"0s\"", "\"100000d\"", "\"x\""]),
    ("cooldown", &["\"15m\"", "\"1ms\"", "\"8d\""]),
    ("status", &["403", "429", "200", "-1"]),
    ("paths", &["[\"/old-admin/*\"]", "[\"relative\"]", "[\"*\"]", "[]"]),
    ("ignore", &["[\"server_scripts\"]", "[\"policy\"]", "[\"xss\", \"sqli\"]", "[]"]),
];

const TABLES: &[(&str, bool, Keys)] = &[
    ("app", false, APP),
    ("client_ip", false, CLIENT_IP),
    ("sanitize", false, SANITIZE),
    ("https", false, HTTPS),
    ("headers", false, HEADERS),
    ("csp", false, CSP),
    ("defaults", false, RULES),
    ("limits", true, LIMIT),
    ("limiter", false, LIMITER),
    ("api_keys", true, API_KEY),
    ("origins", true, ORIGIN),
    ("deploy", false, DEPLOY),
    ("health", false, HEALTH),
    ("cache", false, CACHE),
    ("fallback", false, FALLBACK),
    ("maintenance", false, MAINTENANCE),
    ("sessions", true, SESSIONS),
    ("stats", false, STATS),
    ("slo", true, SLO),
    ("alerts", false, ALERTS),
    ("shield", false, SHIELD),
];

#[derive(Arbitrary, Debug)]
enum Value {
    /// One of the key's own plausible values.
    Known(u8),
    /// A plausible value of another key (wrong type or meaning).
    Other(u8, u8),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Arbitrary, Debug)]
struct Entry {
    key: u8,
    value: Value,
}

#[derive(Arbitrary, Debug)]
struct Table {
    table: u8,
    name: u8,
    entries: Vec<Entry>,
}

#[derive(Arbitrary, Debug)]
struct PolicyDesc {
    version: Option<i8>,
    tables: Vec<Table>,
    routes: Vec<Vec<Entry>>,
    /// `[env.<name>.<table>]` overlays.
    overlays: Vec<(u8, Table)>,
    /// Compile for this environment instead of `app.environment`.
    env: Option<u8>,
}

fn pick<T: Copy>(list: &[T], i: u8) -> Option<T> {
    if list.is_empty() { None } else { list.get(usize::from(i) % list.len()).copied() }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render_value(keys: Keys, key: usize, v: &Value) -> String {
    let own = keys.get(key).map_or(&[][..], |(_, vals)| *vals);
    match v {
        Value::Known(i) => pick(own, *i).unwrap_or("\"\"").to_owned(),
        Value::Other(t, i) => {
            let (_, _, other) = pick(TABLES, *t).unwrap_or(("app", false, APP));
            let (_, vals) = pick(other, *i).unwrap_or(("", &["1"]));
            pick(vals, i.wrapping_mul(7)).unwrap_or("1").to_owned()
        }
        Value::Str(s) => toml_string(s),
        Value::Int(n) => n.to_string(),
        Value::Float(f) if f.is_finite() => format!("{f:?}"),
        Value::Float(_) => "inf".to_owned(),
        Value::Bool(b) => b.to_string(),
    }
}

fn render_entries(out: &mut String, keys: Keys, entries: &[Entry]) {
    let mut seen = Vec::new();
    for e in entries.iter().take(24) {
        let k = usize::from(e.key) % keys.len().max(1);
        if seen.contains(&k) {
            continue; // a duplicate key is only a syntax error
        }
        seen.push(k);
        if let Some((name, _)) = keys.get(k) {
            out.push_str(&format!("{name} = {}\n", render_value(keys, k, &e.value)));
        }
    }
}

fn render_table(out: &mut String, prefix: &str, t: &Table, used: &mut Vec<String>) {
    let Some((name, named, keys)) = pick(TABLES, t.table) else { return };
    let header = if named { format!("{prefix}{name}.{}", pick(NAMES, t.name).unwrap_or("a")) } else { format!("{prefix}{name}") };
    if used.contains(&header) {
        return;
    }
    out.push_str(&format!("[{header}]\n"));
    render_entries(out, keys, &t.entries);
    used.push(header);
}

fn render(p: &PolicyDesc) -> String {
    let mut out = String::new();
    if let Some(v) = p.version {
        out.push_str(&format!("version = {}\n", if v % 4 == 0 { i64::from(v) } else { 1 }));
    }
    let mut used = Vec::new();
    for t in p.tables.iter().take(16) {
        render_table(&mut out, "", t, &mut used);
    }
    for r in p.routes.iter().take(24) {
        out.push_str("[[routes]]\n");
        render_entries(&mut out, RULES, r);
    }
    for (env, t) in p.overlays.iter().take(4) {
        let prefix = format!("env.{}.", pick(NAMES, *env).unwrap_or("staging"));
        render_table(&mut out, &prefix, t, &mut used);
    }
    out
}

fuzz_target!(|desc: PolicyDesc| {
    let source = render(&desc);
    let options = Options { env: desc.env.and_then(|e| pick(NAMES, e)).map(str::to_owned), ..Options::default() };
    let out = compile(&source, &options);
    common::check_output(source.as_bytes(), &out);
});
