//! The request facts a shell hands to the engine: borrowed, so building them costs nothing.

use core::net::IpAddr;

/// What the engine knows about one request. Header names may be in any case.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// Absolute (`https://host/path?q`) or origin-form (`/path?q`) request target, as received.
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// The connection's peer address, used when the trusted client-IP header is absent.
    pub peer_ip: Option<IpAddr>,
    /// What Cloudflare says about the client (`request.cf`): location, network, verified bot.
    /// Absent outside Cloudflare ([`CfFacts::NONE`]); `explain` and `test` take it as input.
    pub cf: CfFacts<'a>,
}

/// The facts of `request.cf` the engine reads: set by Cloudflare's edge, never by the client,
/// so they are the only location and bot facts trusted. Every field is optional: a request that
/// did not pass through Cloudflare (`wrangler dev`, a plain test) carries none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CfFacts<'a> {
    /// `cf.country`: ISO 3166-1 alpha-2, upper case (Cloudflare also sends `T1` for Tor and `XX`
    /// for unknown).
    pub country: Option<&'a str>,
    /// `cf.continent`: `AF`, `AN`, `AS`, `EU`, `NA`, `OC` or `SA`.
    pub continent: Option<&'a str>,
    /// `cf.asn`: the autonomous system the client address belongs to.
    pub asn: Option<u32>,
    /// `cf.verifiedBotCategory` (e.g. `Search Engine Crawler`): set only for a bot Cloudflare
    /// verified.
    pub verified_bot_category: Option<&'a str>,
    /// `cf.botManagement.verifiedBot` (Bot Management plans).
    pub verified_bot: bool,
}

impl CfFacts<'_> {
    /// No `request.cf` at all.
    pub const NONE: CfFacts<'static> =
        CfFacts { country: None, continent: None, asn: None, verified_bot_category: None, verified_bot: false };

    /// Cloudflare vouches for the client being the bot it says it is.
    pub fn is_verified_bot(&self) -> bool {
        self.verified_bot || self.verified_bot_category.is_some_and(|c| !c.trim().is_empty())
    }
}

/// [`CfFacts`], owned: what `explain --country …`, a test case's `country = …` and the
/// playground hand the engine in place of `request.cf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CfInput {
    pub country: Option<String>,
    pub continent: Option<String>,
    pub asn: Option<u32>,
    pub verified_bot_category: Option<String>,
    pub verified_bot: bool,
}

impl CfInput {
    pub fn facts(&self) -> CfFacts<'_> {
        CfFacts {
            country: self.country.as_deref(),
            continent: self.continent.as_deref(),
            asn: self.asn,
            verified_bot_category: self.verified_bot_category.as_deref(),
            verified_bot: self.verified_bot,
        }
    }

    /// The shell's wire form (`country\ncontinent\nasn\nverifiedBotCategory\nverified`), as
    /// [`CfFacts::from_wire`] reads it.
    pub fn to_wire(&self) -> String {
        let asn = self.asn.map(|a| a.to_string()).unwrap_or_default();
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.country.as_deref().unwrap_or(""),
            self.continent.as_deref().unwrap_or(""),
            asn,
            self.verified_bot_category.as_deref().unwrap_or(""),
            if self.verified_bot { "1" } else { "" }
        )
    }
}

impl<'a> CfFacts<'a> {
    /// Read the worker shell's `request.cf` line: `country\ncontinent\nasn\nverifiedBotCategory\nverified`
    /// (empty fields for absent values; an empty string for no `request.cf`).
    pub fn from_wire(wire: &'a str) -> CfFacts<'a> {
        let mut parts = wire.split('\n');
        let mut next = || parts.next().map(str::trim).filter(|v| !v.is_empty());
        let country = next().filter(|c| c.len() == 2);
        let continent = next().filter(|c| c.len() == 2);
        let asn = next().and_then(|a| a.parse().ok());
        let verified_bot_category = next();
        let verified_bot = next().is_some_and(|v| v == "1" || v == "true");
        CfFacts { country, continent, asn, verified_bot_category, verified_bot }
    }
}

impl<'a> RequestFacts<'a> {
    /// First value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Value of a cookie from every `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All `name=value` pairs of every `Cookie` header.
    pub fn cookies(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let name = name.trim();
                (!name.is_empty()).then(|| (name, value.trim()))
            })
    }

    /// `Content-Length` as a number; `Err` when present but not a valid length.
    pub fn content_length(&self) -> Result<Option<u64>, InvalidContentLength> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => {
                let v = v.trim();
                if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidContentLength);
                }
                v.parse().map(Some).map_err(|_| InvalidContentLength)
            }
        }
    }
}

/// A `Content-Length` header that is not a decimal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidContentLength;

/// A request written as text — a method, a target and header lines — as `edgeguard explain`,
/// `edgeguard test` and the playground take it. They all build it here and decide it with
/// [`decide_repeated`], so the three cannot disagree about the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The connection's peer address (see [`TextRequest::set_client_ip`]).
    pub peer_ip: Option<IpAddr>,
    /// What stands in for `request.cf` (country, continent, ASN, verified bot).
    pub cf: CfInput,
}

/// Why a method, target and headers are not a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextRequestError {
    /// The method is not an HTTP token.
    Method(String),
    /// The header at this index has an empty name or one that is not an HTTP token.
    HeaderName(usize),
    /// An origin-form target (`/path`) without a Host header.
    NoHost(String),
    /// Neither an absolute `http(s)://` URL nor a path.
    NotATarget(String),
}

impl TextRequest {
    /// Check the method, the target and the header names (values are taken as given). An
    /// absolute URL gets a matching `Host` header unless one is given, as a real client sends.
    pub fn new(method: &str, url: &str, mut headers: Vec<(String, String)>) -> Result<TextRequest, TextRequestError> {
        if method.is_empty() || !method.bytes().all(is_tchar) {
            return Err(TextRequestError::Method(method.to_owned()));
        }
        if let Some(i) = headers.iter().position(|(name, _)| name.is_empty() || !name.bytes().all(is_tchar)) {
            return Err(TextRequestError::HeaderName(i));
        }
        let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
        let lower = url.to_ascii_lowercase();
        match ["http://", "https://"].iter().find(|s| lower.starts_with(*s)).map(|s| s.len()) {
            Some(start) => {
                let authority = url.get(start..).unwrap_or("").split(['/', '?', '#']).next().unwrap_or("");
                if !has_host && !authority.is_empty() {
                    headers.push(("Host".to_owned(), authority.to_owned()));
                }
            }
            None if url.starts_with('/') => {
                if !has_host {
                    return Err(TextRequestError::NoHost(url.to_owned()));
                }
            }
            None => return Err(TextRequestError::NotATarget(url.to_owned())),
        }
        Ok(TextRequest { method: method.to_owned(), url: url.to_owned(), headers, peer_ip: None, cf: CfInput::default() })
    }

    /// Where the client's address goes: into the policy's trusted client-IP header
    /// (`trusted_header`, replacing any copy sent) or, when the policy names none, the
    /// connection's peer address.
    pub fn set_client_ip(&mut self, trusted_header: Option<&str>, ip: IpAddr) {
        match trusted_header {
            Some(header) => {
                self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(header));
                self.headers.push((header.to_owned(), ip.to_string()));
            }
            None => self.peer_ip = Some(ip),
        }
    }

    /// Run `f` on this request as the engine sees it.
    pub fn with_facts<R>(&self, f: impl FnOnce(&RequestFacts) -> R) -> R {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        f(&RequestFacts { method: &self.method, url: &self.url, headers: &headers, peer_ip: self.peer_ip, cf: self.cf.facts() })
    }
}

/// Decide `repeat` (at least one) identical requests at `now` against one fresh limiter (hash
/// seed `limiter_seed`), each with its own `draw`, and return the last decision: what
/// `edgeguard explain --repeat` and the playground show.
pub fn decide_repeated<E>(
    engine: &crate::Engine,
    request: &TextRequest,
    repeat: u32,
    now: crate::vocab::Nanos,
    limiter_seed: u64,
    draw: impl FnMut() -> Result<crate::Draw, E>,
) -> Result<crate::Decision, E> {
    decide_repeated_on(engine, request, repeat, now, &mut engine.new_limiter(limiter_seed), draw)
}

/// [`decide_repeated`] against a limiter the caller keeps, so that what these requests spend is
/// still spent for the next ones: `edgeguard test` sends a case's earlier requests (`before`)
/// and then the case's own through one limiter.
pub fn decide_repeated_on<E>(
    engine: &crate::Engine,
    request: &TextRequest,
    repeat: u32,
    now: crate::vocab::Nanos,
    limiter: &mut crate::Limiter,
    mut draw: impl FnMut() -> Result<crate::Draw, E>,
) -> Result<crate::Decision, E> {
    request.with_facts(|facts| {
        let mut decision = engine.decide_standalone(facts, limiter, now, draw()?);
        for _ in 1..repeat {
            decision = engine.decide_standalone(facts, limiter, now, draw()?);
        }
        Ok(decision)
    })
}

/// RFC 9110 `tchar`: the characters of methods and header names. One bit test per byte (it
/// runs over every header name of every request); two 64-bit masks, as wasm has no 128-bit
/// shift.
pub fn is_tchar(b: u8) -> bool {
    let mask = if b < 64 { TCHAR_MASK_LOW } else { TCHAR_MASK_HIGH };
    b < 128 && mask.wrapping_shr(u32::from(b & 63)) & 1 == 1
}

/// Bit `b` set for each byte `b` below 64 that is a `tchar` (digits and ``!#$%&'*+-.``).
const TCHAR_MASK_LOW: u64 = tchar_mask(0);
/// Bit `b - 64` set for each byte `b` from 64 to 127 that is a `tchar` (letters and ``^_`|~``).
const TCHAR_MASK_HIGH: u64 = tchar_mask(64);

const fn tchar_mask(from: u8) -> u64 {
    let mut mask = 0u64;
    let mut i = 0u8;
    while i < 64 {
        let b = from.wrapping_add(i);
        let symbol = matches!(b, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        if b.is_ascii_alphanumeric() || symbol {
            mask |= 1u64.wrapping_shl(i as u32);
        }
        i = i.wrapping_add(1);
    }
    mask
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn tchars() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), expected, "byte {b}");
        }
    }

    #[test]
    fn text_requests() {
        let r = TextRequest::new("GET", "https://example.com:8443/a?b", Vec::new()).unwrap();
        assert_eq!(r.headers, vec![("Host".to_owned(), "example.com:8443".to_owned())]);
        assert_eq!(TextRequest::new("GET", "/x", Vec::new()), Err(TextRequestError::NoHost("/x".to_owned())));
        assert_eq!(TextRequest::new("G(T", "/x", Vec::new()), Err(TextRequestError::Method("G(T".to_owned())));
        assert_eq!(TextRequest::new("GET", "x", Vec::new()), Err(TextRequestError::NotATarget("x".to_owned())));
        let h = vec![("Host".to_owned(), "a".to_owned()), ("bad name".to_owned(), String::new())];
        assert_eq!(TextRequest::new("GET", "/", h), Err(TextRequestError::HeaderName(1)));

        let mut r = TextRequest::new("GET", "http://a/", vec![("X-Ip".to_owned(), "1.1.1.1".to_owned())]).unwrap();
        r.set_client_ip(Some("x-ip"), IpAddr::from([192, 0, 2, 1]));
        assert_eq!(r.headers.last(), Some(&("x-ip".to_owned(), "192.0.2.1".to_owned())));
        assert_eq!(r.headers.len(), 2);
        r.set_client_ip(None, IpAddr::from([192, 0, 2, 2]));
        assert_eq!(r.peer_ip, Some(IpAddr::from([192, 0, 2, 2])));
    }
}
