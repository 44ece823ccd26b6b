//! The wire between the engine (this crate, in wasm) and the worker's JS shell
//! (`js/shell.mjs`), described once: every value that crosses, in both directions. The shell's
//! JSDoc typedefs (`Step`, `Finished`) mirror the types here; change them in lockstep (the
//! e2e suites in tests/e2e run the two together).
//!
//! Per request the common path crosses twice, and each way once:
//!
//! 1. **in:** `decide(request, cf, now)` → a [`Step`] as JSON. `request` is
//!    `method\nurl\nname\nvalue\n…` and `cf` is `country\ncontinent\nasn\ncategory\nverified`
//!    (one string each: one copy into wasm; none of the parts can hold a newline). The step is
//!    the final answer or the forward to make, or it asks the shell for something first: a
//!    global limiter's count (`a: "limit"`, then `settle(k, answer, now)` gives the step), or
//!    for a session, a JWKS fetch or a signature check (`a: "ask"`, then `decide` again).
//! 2. **out:** once the shell has the response to send (the origin's, a stored copy's, or none
//!    because the origin failed), `finish(k, sent, now)` with [`Sent`]'s line format → the
//!    response phase for it ([`Finished`]: header operations, and for an origin that failed the
//!    status and body) followed by what to write (log line, events, data point).
//!
//! Header operations travel flat — `[code, name, value, code, name, value, …]`, codes as
//! edgeguard_core::response::Op::code — so `JSON.parse` builds one array of strings. The
//! route's header set is the same for every response on the route: the shell asks
//! `header_ops(h)` once per set and applies it before the per-response operations.
//!
//! The flight token `k` names one request from its `decide` to its `finish`; a step waiting
//! for a global limiter keeps the same token.

use std::borrow::Cow;

use edgeguard_core::health::Probe;
use edgeguard_core::observe::DataPoint;
use edgeguard_core::response::Op;
use serde::{Deserialize, Serialize};

/// What the shell does next with a request: `decide`'s (and `settle`'s) answer. Short keys,
/// header operations flat and absent fields left out: it crosses into JS and through
/// `JSON.parse` on every request.
#[derive(Serialize)]
pub(crate) struct Step<'a> {
    /// action: "forward", "reject", "redirect", "respond" (an endpoint of the edge's own), or
    /// "limit" (ask the global limiter `g`, then `settle`)
    pub(crate) a: &'static str,
    /// status of an edge answer
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) s: Option<u16>,
    /// header set index: `header_ops(h)` (the same for every response on the route)
    pub(crate) h: u16,
    /// origin index
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) o: Option<u16>,
    /// normalized path and query for the origin
    pub(crate) p: &'a str,
    /// request id
    pub(crate) r: &'a str,
    /// operations on a copy of the request's headers before it goes to the origin: the
    /// client's forwarding and internal headers removed, the edge's own set
    #[serde(serialize_with = "flat_ops")]
    pub(crate) f: Vec<Op<'a>>,
    /// problem+json body of a refusal
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) b: Option<String>,
    /// origin to retry on once after a connect error or 5xx
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fo: Option<u16>,
    /// the route's max_body, for a body that arrives without a length (counted as it streams)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mb: Option<u64>,
    /// the global limit to ask before anything else (with `a: "limit"`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) g: Option<WireGlobal>,
    /// the flight token for `settle`, `finish`, `csp_report` and `body_too_large`
    pub(crate) k: u32,
    /// reason code
    pub(crate) why: &'static str,
    /// the reason global shadow mode let this request through; with it, the route and detail
    /// for the shell's shadow log line (left out otherwise: the request's log line has them)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) shadowed: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<&'a str>,
    /// the shadow policy's disagreement: a log line for the shell to write as it is
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) x: Option<String>,
    /// edge cache key: look the request up and store a storable answer under it
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ck: Option<&'a str>,
    /// edge cache lifetimes in seconds: [edge, stale_while_revalidate, stale_if_error]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cl: Option<[u64; 3]>,
    /// the route caches but this request bypasses it (personal, not GET/HEAD)
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) cb: bool,
    /// a page request: the fallback page is its answer (maintenance), or would be if the
    /// origin failed
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) fb: bool,
    /// the response phase reads the response's Content-Type (strict CSP on the route, or
    /// PostHog pageviews): pass it in `finish`'s `sent`
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ct: bool,
}

impl Step<'_> {
    /// The step as JSON, exactly as its `Serialize` derive writes it (held to that by
    /// `tests::step_json_is_serdes`), with edgeguard_core::json's writer: serde_json's
    /// byte-at-a-time escaping cost more than the decision itself.
    pub(crate) fn to_json(&self) -> String {
        let mut w = edgeguard_core::json::ObjectWriter::with_capacity(512);
        w.str("a", self.a);
        w.opt_u64("s", self.s.map(u64::from));
        w.u64("h", u64::from(self.h));
        w.opt_u64("o", self.o.map(u64::from));
        w.str("p", self.p);
        w.str("r", self.r);
        w.str_array("f", flat(&self.f));
        w.opt_str("b", self.b.as_deref());
        w.opt_u64("fo", self.fo.map(u64::from));
        w.opt_u64("mb", self.mb);
        if let Some(g) = &self.g {
            w.raw(
                "g",
                &serde_json::to_string(g).unwrap_or_else(|_| "null".into()),
            );
        }
        w.u64("k", u64::from(self.k));
        w.str("why", self.why);
        w.opt_str("shadowed", self.shadowed);
        w.opt_str("route", self.route);
        w.opt_str("detail", self.detail);
        w.opt_str("x", self.x.as_deref());
        w.opt_str("ck", self.ck);
        if let Some(cl) = self.cl {
            w.raw("cl", &format!("[{},{},{}]", cl[0], cl[1], cl[2]));
        }
        for (key, on) in [("cb", self.cb), ("fb", self.fb), ("ct", self.ct)] {
            if on {
                w.bool(key, true);
            }
        }
        w.finish()
    }
}

/// Operations as one flat sequence `code, name, value, …`: no array per operation for
/// `JSON.parse` to build.
pub(crate) fn flat<'a>(ops: &'a [Op<'a>]) -> impl Iterator<Item = &'a str> {
    ops.iter().flat_map(|op| {
        let (name, value) = op.parts();
        [op.code(), name, value]
    })
}

/// The derive's side of [`flat`].
fn flat_ops<S: serde::Serializer>(ops: &[Op], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(flat(ops))
}

/// The response the shell is about to send, for `finish`: one line per field, in this order —
/// `status`, `edge_ms`, `origin_ms` (empty: the origin was not asked), `origin_error`
/// ("timeout", "unreachable" or empty; without `from_origin` the edge answers for the origin),
/// `failover` (the first origin's failure when the
/// request failed over: "500", "unreachable"…), `cache` (what the edge cache did: `hit`,
/// `stale`, `miss`…, edgeguard_core::observe::CACHE_OUTCOMES; empty on a route without one),
/// `from_origin` ("1" when the origin's answer or a stored copy of it is sent), `head`
/// ("1" for a HEAD request), `content_type`, `content_encoding` (read when the step said `ct`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Sent<'a> {
    pub(crate) status: u16,
    pub(crate) edge_ms: u64,
    pub(crate) origin_ms: Option<u64>,
    pub(crate) origin_error: &'a str,
    pub(crate) failover: &'a str,
    pub(crate) cache: &'a str,
    pub(crate) from_origin: bool,
    pub(crate) head: bool,
    pub(crate) content_type: &'a str,
    pub(crate) content_encoding: &'a str,
}

impl<'a> Sent<'a> {
    /// Read the line format; a field missing or not a number reads as absent (0, empty).
    pub(crate) fn parse(text: &'a str) -> Sent<'a> {
        let mut f = text.split('\n');
        let mut next = || f.next().unwrap_or_default();
        let number = |s: &str| s.trim().parse::<u64>().ok();
        Sent {
            status: number(next())
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
            edge_ms: number(next()).unwrap_or(0),
            origin_ms: number(next()),
            origin_error: next(),
            failover: next(),
            cache: next(),
            from_origin: next() == "1",
            head: next() == "1",
            content_type: next(),
            content_encoding: next(),
        }
    }

    /// The line format (the shell writes it; tests read it back).
    #[cfg(test)]
    pub(crate) fn to_line(&self) -> String {
        let flag = |b: bool| if b { "1" } else { "" };
        let origin_ms = self.origin_ms.map(|m| m.to_string()).unwrap_or_default();
        [
            &self.status.to_string(),
            &self.edge_ms.to_string(),
            &origin_ms,
            self.origin_error,
            self.failover,
            self.cache,
            flag(self.from_origin),
            flag(self.head),
            self.content_type,
            self.content_encoding,
        ]
        .join("\n")
    }
}

/// The head of `finish`'s answer: the response phase for what the shell is sending. Its JSON
/// is the first line; what follows the newline is the observation (see `Edge::finish`).
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub(crate) struct Finished<'a> {
    /// operations after the header set's, flat (`code, name, value, …`)
    #[serde(borrow)]
    pub(crate) o: Vec<Cow<'a, str>>,
    /// the status to answer with, when the edge answers instead (the origin failed)
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) s: Option<u16>,
    /// the body of that answer: problem+json
    #[serde(skip_serializing_if = "Option::is_none", default, borrow)]
    pub(crate) b: Option<Cow<'a, str>>,
    /// that answer is the fallback page (`fallback_page()`)
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub(crate) fb: bool,
}

impl<'a> Finished<'a> {
    pub(crate) fn new(ops: &'a [Op<'a>]) -> Finished<'a> {
        Finished {
            o: flat(ops).map(Cow::Borrowed).collect(),
            s: None,
            b: None,
            fb: false,
        }
    }

    /// The head as JSON, exactly as its `Serialize` derive writes it (`tests::finished_round_trips`
    /// holds it to that), with the same writer as [`Step::to_json`].
    pub(crate) fn to_json(&self) -> String {
        let mut w = edgeguard_core::json::ObjectWriter::with_capacity(256);
        w.str_array("o", self.o.iter().map(|c| c.as_ref()));
        w.opt_u64("s", self.s.map(u64::from));
        w.opt_str("b", self.b.as_deref());
        if self.fb {
            w.bool("fb", true);
        }
        w.finish()
    }
}

/// A global limit to count the request under (`a: "limit"`): the shell asks the limiter
/// (`EdgeguardLimiter` shard `shard`, or the Cloudflare binding) and hands its answer, a
/// [`WireOutcome`], to `settle`.
#[derive(Serialize)]
pub(crate) struct WireGlobal {
    pub(crate) limit: u16,
    /// Limit name (for the Cloudflare binding's name and logs).
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) shard: u32,
    pub(crate) cloudflare: bool,
    pub(crate) window_secs: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireOutcome {
    pub(crate) allowed: bool,
    pub(crate) remaining: u64,
    pub(crate) reset: u64,
    pub(crate) retry_after: u64,
}

#[derive(Serialize)]
pub(crate) struct WireOrigin<'a> {
    pub(crate) name: &'a str,
    pub(crate) url: &'a str,
    pub(crate) timeout_ms: u64,
}

#[derive(Serialize)]
pub(crate) struct WireInfo<'a> {
    pub(crate) revision: &'a str,
    pub(crate) app: &'a str,
    pub(crate) environment: &'a str,
    pub(crate) origins: Vec<WireOrigin<'a>>,
    pub(crate) active: u16,
    pub(crate) probe_path: Option<&'a str>,
    pub(crate) probe_timeout_ms: u64,
    pub(crate) health_cache_ms: u64,
    /// Most of a probe's body the shell reads and passes on (the rest is not read).
    pub(crate) probe_max_bytes: usize,
    pub(crate) observe: WireObserve<'a>,
    /// Strict CSP: where the nonce goes in an `n` operation's value, and the start tags the
    /// shell's HTMLRewriter puts it on for an `r` operation (workerd's HTMLRewriter is lol_html, the rewriter
    /// `edgeguard nonce` runs).
    pub(crate) nonce: WireNonce,
    /// The policy has a fallback page (`[fallback]`): `fallback_page()` gives its HTML once.
    pub(crate) fallback: bool,
    /// `[sessions.*]`: the worker secret holding each HS256 key, for `set_session_secret`.
    pub(crate) sessions: Vec<WireSessionSource<'a>>,
}

#[derive(Serialize)]
pub(crate) struct WireSessionSource<'a> {
    pub(crate) name: &'a str,
    pub(crate) secret: Option<&'a str>,
}

/// What `decide` answers when the engine needs the shell first (edgeguard_core::sessions::Ask):
/// `{"a":"ask","j":{source,url}}` — fetch the JWKS, hand it to `session_jwks` — or
/// `{"a":"ask","v":{id,alg,jwk,kid,input,signature}}` — check the signature with
/// `crypto.subtle.verify`, hand the answer to `session_verified`; then decide again.
#[derive(Serialize)]
pub(crate) struct WireAsk<'a> {
    pub(crate) a: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) j: Option<WireJwksAsk<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) v: Option<WireSignatureAsk<'a>>,
}

#[derive(Serialize)]
pub(crate) struct WireJwksAsk<'a> {
    pub(crate) source: u16,
    pub(crate) url: &'a str,
}

#[derive(Serialize)]
pub(crate) struct WireSignatureAsk<'a> {
    pub(crate) id: u32,
    pub(crate) alg: &'a str,
    pub(crate) jwk: &'a str,
    pub(crate) kid: &'a str,
    pub(crate) input: &'a str,
    pub(crate) signature: &'a str,
}

pub(crate) fn session_ask_json(ask: &edgeguard_core::sessions::Ask) -> String {
    use edgeguard_core::sessions::Ask;
    let wire = match ask {
        Ask::Jwks { source, url } => WireAsk {
            a: "ask",
            j: Some(WireJwksAsk {
                source: *source,
                url,
            }),
            v: None,
        },
        Ask::Signature(v) => WireAsk {
            a: "ask",
            j: None,
            v: Some(WireSignatureAsk {
                id: v.id,
                alg: v.alg,
                jwk: &v.jwk,
                kid: &v.kid,
                input: &v.input,
                signature: &v.signature,
            }),
        },
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

#[derive(Serialize)]
pub(crate) struct WireNonce {
    pub(crate) placeholder: &'static str,
    pub(crate) attribute: &'static str,
    pub(crate) selectors: &'static [&'static str],
}

#[derive(Serialize)]
pub(crate) struct WireObserve<'a> {
    /// "off" | "error" | "warn" | "info": the level of the shell's own event lines too.
    pub(crate) log: &'static str,
    /// PostHog host from the policy (events go to `<host>/batch/`), when it has `[observe.posthog]`.
    pub(crate) posthog_host: Option<&'a str>,
    /// Largest CSP report body the shell reads.
    pub(crate) csp_max_bytes: u32,
}

/// What `finish` hands back: the log line, PostHog events, the Analytics Engine data point.
#[derive(Serialize)]
pub(crate) struct WireFinished<'a> {
    pub(crate) l: Option<&'a str>,
    pub(crate) e: Option<&'a [serde_json::Value]>,
    pub(crate) p: Option<&'a DataPoint>,
}

#[derive(Deserialize)]
pub(crate) struct WireProbe {
    pub(crate) origin: u16,
    pub(crate) status: Option<u16>,
    pub(crate) ms: u64,
    pub(crate) time: String,
    pub(crate) error: Option<String>,
    /// The answer's text, at most `probe_max_bytes`; absent when the body was not read.
    #[serde(default)]
    pub(crate) body: Option<String>,
    /// The body went on past `probe_max_bytes`.
    #[serde(default)]
    pub(crate) truncated: bool,
}

impl From<WireProbe> for Probe {
    fn from(p: WireProbe) -> Probe {
        Probe {
            origin: p.origin,
            status: p.status,
            millis: p.ms,
            time: p.time,
            error: p.error,
            body: p.body,
            truncated: p.truncated,
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "[ -~\\x00-\\x1f\"\\\\é✓]{0,16}"
    }

    /// A field of `Sent`'s line format: anything but a newline.
    fn field() -> impl Strategy<Value = String> {
        "[ -~\\t\"é✓]{0,16}"
    }

    proptest! {
        /// The hand-written step is what the derive writes, byte for byte, for every shape:
        /// optional fields present or not, strings that need escaping, a global check.
        #[test]
        fn step_json_is_serdes(
            strings in proptest::collection::vec(text(), 10),
            numbers in any::<(u16, u16, u16, u16, u32)>(),
            present in any::<[bool; 12]>(),
            pairs in 0usize..4,
        ) {
            let s = |i: usize| strings.get(i).map_or("", String::as_str);
            let on = |i: usize| present.get(i).copied().unwrap_or(false);
            let step = Step {
                a: "forward",
                s: on(0).then_some(numbers.0),
                h: numbers.1,
                o: on(1).then_some(numbers.2),
                p: s(0),
                r: s(1),
                f: (0..pairs).map(|i| if i % 2 == 0 { Op::Set(Cow::Borrowed("x-forwarded-for"), Cow::Borrowed(s(i + 2))) } else { Op::Remove(Cow::Borrowed(s(i + 3))) }).collect(),
                b: on(3).then(|| s(6).to_owned()),
                fo: on(4).then_some(numbers.3),
                mb: on(4).then_some(u64::from(numbers.2)),
                g: on(5).then(|| WireGlobal { limit: 2, name: s(7).to_owned(), key: "00ff".into(), shard: 3, cloudflare: on(6), window_secs: 60 }),
                k: numbers.4,
                why: "ok",
                shadowed: on(8).then_some("blocked"),
                route: on(9).then(|| s(8)),
                detail: on(10).then(|| s(9)),
                x: on(11).then(|| s(0).to_owned()),
                ck: on(0).then(|| s(2)),
                cl: on(1).then_some([u64::from(numbers.1), 0, u64::from(numbers.3)]),
                cb: on(2),
                fb: on(3),
                ct: on(7),
            };
            prop_assert_eq!(step.to_json(), serde_json::to_string(&step).unwrap_or_default());
        }

        /// `finish`'s input reads back what the shell writes, field for field.
        #[test]
        fn sent_round_trips(
            status in any::<u16>(),
            edge_ms in any::<u32>(),
            origin_ms in proptest::option::of(any::<u32>()),
            strings in proptest::collection::vec(field(), 5),
            flags in any::<(bool, bool)>(),
        ) {
            let s = |i: usize| strings.get(i).map_or("", |t| t.trim());
            let sent = Sent {
                status,
                edge_ms: u64::from(edge_ms),
                origin_ms: origin_ms.map(u64::from),
                origin_error: s(0),
                failover: s(1),
                cache: s(2),
                from_origin: flags.0,
                head: flags.1,
                content_type: s(3),
                content_encoding: s(4),
            };
            let line = sent.to_line();
            prop_assert_eq!(Sent::parse(&line), sent);
        }

        /// `finish`'s head reads back as it was written, through JSON (as the shell reads it).
        #[test]
        fn finished_round_trips(
            strings in proptest::collection::vec(text(), 6),
            status in proptest::option::of(any::<u16>()),
            fb in any::<bool>(),
        ) {
            let s = |i: usize| strings.get(i).map_or("", String::as_str);
            let ops = [Op::Set(Cow::Borrowed(s(0)), Cow::Borrowed(s(1))), Op::Remove(Cow::Borrowed(s(2))), Op::Append(Cow::Borrowed(s(3)), Cow::Borrowed(s(4))), Op::RewriteBody];
            let mut head = Finished::new(&ops);
            head.s = status;
            head.b = status.map(|_| Cow::Borrowed(s(5)));
            head.fb = fb;
            let json = serde_json::to_string(&head).unwrap_or_default();
            prop_assert_eq!(head.to_json(), json.clone());
            let back: Finished = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &head);
            // and the flat operations read back as the same operations
            let read: Vec<Op> = back.o.chunks(3).filter_map(|c| match c { [code, name, value] => Op::from_parts(code, name, value), _ => None }).collect();
            prop_assert_eq!(read, ops.to_vec());
        }
    }

    /// The request line splits into method, URL and pairs; an empty value stays a value.
    #[test]
    fn request_lines_split() {
        let (method, url, pairs) = crate::split_request("GET\nhttps://a.test/\nx-empty\n\ncookie\na=1\n");
        assert_eq!((method, url), ("GET", "https://a.test/"));
        assert_eq!(pairs, vec![("x-empty", ""), ("cookie", "a=1")]);
        assert_eq!(crate::split_request(""), ("", "", vec![]));
        assert_eq!(crate::split_request("GET\n/\nname-without-value\n").2, vec![]);
    }

    /// A line with fields missing reads as absent, never as a panic.
    #[test]
    fn sent_reads_short_lines() {
        assert_eq!(Sent::parse(""), Sent::default());
        let sent = Sent::parse("200\n3");
        assert_eq!((sent.status, sent.edge_ms, sent.origin_ms), (200, 3, None));
    }
}
