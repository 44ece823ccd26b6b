//! The request as the page describes it, turned into the same [`TextRequest`] the CLI builds.

use core::net::IpAddr;

use edgeguard_core::request::{TextRequest, TextRequestError};
use edgeguard_core::{Draw, Engine};
use serde::Deserialize;

/// Cookies as one `Cookie` header value (`a=1; b=2`) or as `[name, value]` pairs.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Cookies {
    Line(String),
    Pairs(Vec<(String, String)>),
}

/// The page's request: `{method, url, headers: [[name, value], ...], cookies, client_ip,
/// repeat, at, seed}`. Only `url` is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayRequest {
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    /// Header names and values, trimmed like the CLI's `-H "Name: value"`.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Sent as one more `Cookie` header after `headers`.
    #[serde(default)]
    pub cookies: Option<Cookies>,
    /// Put in the policy's trusted client-IP header, or used as the peer address (as
    /// `explain --client-ip`). Empty = none.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// Identical requests at the same instant against one fresh limiter; the last is shown.
    #[serde(default = "one")]
    pub repeat: u32,
    /// Seconds on the limiter's clock.
    #[serde(default)]
    pub at: u64,
    /// Seeds the request ids, the canary draws and the limiter's hash (the CLI draws these
    /// from the OS; the page passes a random seed and puts it in share links so a link
    /// reproduces the same decision).
    #[serde(default)]
    pub seed: u64,
    /// A test session: these claims (a JSON object), signed with the policy's session
    /// `test_secret` and sent where its source reads a token (docs/sessions.md). `null` or an
    /// empty object: none.
    #[serde(default)]
    pub session: Option<serde_json::Value>,
    /// What stands in for `request.cf` (docs/geo.md, docs/bots.md), as `explain --country`,
    /// `--continent`, `--asn`, `--verified-bot`, `--verified-bot-category`.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub continent: Option<String>,
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(default)]
    pub verified_bot: bool,
    #[serde(default)]
    pub verified_bot_category: Option<String>,
    /// Parsed `client_ip`.
    #[serde(skip)]
    ip: Option<IpAddr>,
}

fn get() -> String {
    "GET".to_owned()
}

fn one() -> u32 {
    1
}

/// The Unix time the playground's clock starts at (`at = 0`): 2026-01-01. Fixed, so a share
/// link gives the same decision on any day; test sessions are signed against it.
pub const PLAY_CLOCK: u64 = 1_767_225_600;

/// Most requests `repeat` takes, as the CLI's `--repeat`.
pub const MAX_REPEAT: u32 = 1_000_000;

impl PlayRequest {
    /// Parse and check everything that does not need the policy.
    pub fn parse(json: &str) -> Result<PlayRequest, String> {
        let mut r: PlayRequest = serde_json::from_str(json).map_err(|e| format!("the request is not valid: {e}"))?;
        r.ip = match r.client_ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| format!("client IP `{s}` is not an IPv4 or IPv6 address"))?),
        };
        if !(1..=MAX_REPEAT).contains(&r.repeat) {
            return Err(format!("repeat must be between 1 and {MAX_REPEAT}; got {}", r.repeat));
        }
        if r.at.checked_mul(1_000_000_000).is_none() {
            return Err(format!("at = {} is too large (at most {} seconds)", r.at, u64::MAX / 1_000_000_000));
        }
        Ok(r)
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    pub fn repeat(&self) -> u32 {
        self.repeat
    }

    /// `at` in the engine's nanoseconds (checked by [`PlayRequest::parse`]).
    pub fn now(&self) -> Result<u64, String> {
        self.at.checked_mul(1_000_000_000).ok_or_else(|| format!("at = {} is too large", self.at))
    }

    /// Headers as sent: the list, trimmed, then the cookies.
    pub fn header_list(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> =
            self.headers.iter().map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).filter(|(n, v)| !(n.is_empty() && v.is_empty())).collect();
        let cookie = match &self.cookies {
            None => String::new(),
            Some(Cookies::Line(line)) => line.trim().to_owned(),
            Some(Cookies::Pairs(pairs)) => pairs
                .iter()
                .filter(|(n, _)| !n.trim().is_empty())
                .map(|(n, v)| format!("{}={}", n.trim(), v.trim()))
                .collect::<Vec<_>>()
                .join("; "),
        };
        if !cookie.is_empty() {
            headers.push(("Cookie".to_owned(), cookie));
        }
        headers
    }

    /// The request the engine decides, built exactly as `edgeguard explain` builds it.
    pub fn build(&self, engine: &Engine) -> Result<TextRequest, String> {
        let mut headers = self.header_list();
        if let Some((name, value)) = self.session_header(engine)? {
            if name == "authorization" {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
            }
            headers.push((name, value));
        }
        self.build_for(engine, self.method.trim(), self.url.trim(), headers)
    }

    /// The header carrying the request's test session, as `explain --session` signs it: the
    /// policy's only (else first) `[sessions]` source with a `test_secret`, valid for an hour
    /// from `at` on the playground's clock ([`PLAY_CLOCK`]). `None` without a session.
    pub fn session_header(&self, engine: &Engine) -> Result<Option<(String, String)>, String> {
        let Some(claims) = self.session.as_ref().filter(|c| !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty())) else {
            return Ok(None);
        };
        let sources = &engine.bundle().sessions;
        let Some(source) = sources.iter().find(|s| s.test_secret.is_some()) else {
            return Err(if sources.is_empty() {
                "a test session needs a [sessions.<name>] source in the policy".to_owned()
            } else {
                "a test session needs `test_secret` in the policy's [sessions.<name>] source".to_owned()
            });
        };
        let now = PLAY_CLOCK.saturating_add(self.at);
        edgeguard_core::sessions::test_header(source, claims, now, 3600, false, None).map(Some)
    }

    /// The same request with another method and URL (the report card's GETs and redirects).
    pub fn build_for(&self, engine: &Engine, method: &str, url: &str, headers: Vec<(String, String)>) -> Result<TextRequest, String> {
        let names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        let mut request = TextRequest::new(method, url, headers).map_err(|e| match e {
            TextRequestError::Method(m) if m.is_empty() => "the method is empty".to_owned(),
            TextRequestError::Method(m) => format!("`{m}` is not an HTTP method"),
            TextRequestError::HeaderName(i) => {
                format!("`{}` is not a valid header name", names.get(i).map(String::as_str).unwrap_or_default())
            }
            TextRequestError::NoHost(u) => {
                format!("`{u}` has no host: add a Host header or give an absolute URL (https://example.com{u})")
            }
            TextRequestError::NotATarget(u) if u.is_empty() => "the URL is empty".to_owned(),
            TextRequestError::NotATarget(u) => {
                format!("`{u}` is not a request target: give an absolute URL (https://host/path) or a path (/path) with a Host header")
            }
        })?;
        if let Some(ip) = self.ip {
            request.set_client_ip(engine.bundle().client_ip.from.as_deref(), ip);
        }
        let code = |c: &Option<String>| c.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_ascii_uppercase);
        request.cf = edgeguard_core::request::CfInput {
            country: code(&self.country),
            continent: code(&self.continent),
            asn: self.asn,
            verified_bot_category: self.verified_bot_category.clone().filter(|c| !c.trim().is_empty()),
            verified_bot: self.verified_bot,
        };
        Ok(request)
    }

    pub fn draws(&self) -> Draws {
        Draws(self.seed)
    }
}

/// splitmix64 over the request's seed: request ids, canary draws and the limiter seed.
pub struct Draws(u64);

impl Draws {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn limiter_seed(&mut self) -> u64 {
        self.next_u64()
    }

    /// One request's draw.
    pub fn next(&mut self) -> Draw {
        let hi = u128::from(self.next_u64());
        let lo = u128::from(self.next_u64());
        let lane = (self.next_u64() >> 32) as u32;
        Draw { request_id: (hi << 64) | lo, lane }
    }
}
