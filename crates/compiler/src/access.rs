//! Access rules: CIDR lists, required headers and cookies, API keys (SHA-256 hashes only).

use core::net::IpAddr;

use edgeguard_core::bundle::{ApiKey, ClientIp, Limit};
use edgeguard_core::cidr::Cidr;
use edgeguard_core::glob::Glob;

use crate::diagnostics::Diagnostic;
use crate::headers::validate_name;
use crate::model::{self, ApiKeyDef, S};
use crate::{Ctx, codes};

pub fn cidrs(ctx: &mut Ctx, list: Option<&Vec<S<String>>>) -> Vec<Cidr> {
    let mut out = Vec::new();
    for item in list.into_iter().flatten() {
        if let Some(c) = cidr(ctx, item) {
            out.push(c);
        }
    }
    out
}

fn cidr(ctx: &mut Ctx, item: &S<String>) -> Option<Cidr> {
    let text = item.get_ref().trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let bad = |ctx: &mut Ctx, why: &str| {
        ctx.push(
            Diagnostic::error(codes::CIDR, item.span(), format!("`{text}` is not a valid CIDR block: {why}"))
                .help("write an address with a prefix length, e.g. \"203.0.113.0/24\" or \"2001:db8::/32\""),
        );
        None
    };
    let Ok(ip) = addr.parse::<IpAddr>() else { return bad(ctx, "the address does not parse") };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return bad(ctx, &format!("the prefix length must be 0–{max}")),
        },
    };
    let block = Cidr::new(ip, prefix)?;
    let host_bits = Cidr::new(ip, max).is_some_and(|exact| exact.network != block.network);
    if host_bits {
        let network = network_text(ip, prefix);
        ctx.push(
            Diagnostic::warning(codes::CIDR_HOST_BITS, item.span(), format!("`{text}` has host bits set; it means {network}"))
                .help(format!("write \"{network}\"")),
        );
    }
    Some(block)
}

fn network_text(ip: IpAddr, prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32u32.saturating_sub(u32::from(prefix))).unwrap_or(0);
            format!("{}/{prefix}", core::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128u32.saturating_sub(u32::from(prefix))).unwrap_or(0);
            format!("{}/{prefix}", core::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

pub fn require_headers(ctx: &mut Ctx, list: Option<&Vec<S<String>>>) -> Vec<String> {
    list.into_iter().flatten().filter_map(|h| validate_name(ctx, h)).collect()
}

pub fn require_cookie(ctx: &mut Ctx, value: Option<&S<String>>) -> Option<Glob> {
    let v = value?;
    let text = v.get_ref();
    let ok = !text.is_empty() && text.bytes().all(|b| b == b'*' || edgeguard_core::sanitize::is_tchar(b));
    if !ok {
        ctx.push(
            Diagnostic::error(codes::HEADER_NAME, v.span(), format!("`{text}` is not a cookie name pattern"))
                .help("cookie names are tokens; `*` matches any run of characters, e.g. \"sb-*-auth-token*\""),
        );
        return None;
    }
    Some(Glob::new(text))
}

/// `[client_ip]`: the trusted header (Cloudflare's `CF-Connecting-IP` unless the policy names
/// another — a worker never sees the connection's peer, so without one every client would share
/// one address), the request id header, and the IPv6 prefix limit keys use.
pub fn client_ip(ctx: &mut Ctx, def: Option<&model::ClientIp>) -> ClientIp {
    let from = match def.and_then(|c| c.from.as_ref()) {
        Some(h) => validate_name(ctx, h),
        None => Some(DEFAULT_CLIENT_IP_HEADER.to_owned()),
    };
    let ipv6_prefix = match def.and_then(|c| c.ipv6_prefix.as_ref()) {
        None => DEFAULT_IPV6_PREFIX,
        Some(p) => match u8::try_from(*p.get_ref()) {
            Ok(n) if (32..=128).contains(&n) => n,
            _ => {
                ctx.push(
                    Diagnostic::error(codes::CLIENT_IP, p.span(), format!("ipv6_prefix {} is not a prefix length from 32 to 128", p.get_ref()))
                        .help("64 keys a client by its /64, the block an ISP or host gives one customer"),
                );
                DEFAULT_IPV6_PREFIX
            }
        },
    };
    ClientIp { from, request_id_from: def.and_then(|c| c.request_id_from.as_ref()).and_then(|h| validate_name(ctx, h)), ipv6_prefix }
}

/// The client address header when a policy names none: Cloudflare's own, set on every request
/// a worker receives and replacing whatever the client sent.
pub const DEFAULT_CLIENT_IP_HEADER: &str = "cf-connecting-ip";
pub const DEFAULT_IPV6_PREFIX: u8 = 64;
/// A key's failed attempts a client may make before its attempts get 429 (a rate and burst).
pub const DEFAULT_KEY_FAILURES: &str = "10/1m";

pub fn api_key(ctx: &mut Ctx, name: &S<String>, def: &ApiKeyDef, limits: &mut crate::limits::Limits) -> Option<ApiKey> {
    let header = match &def.header {
        Some(h) => validate_name(ctx, h)?,
        None => "x-api-key".to_owned(),
    };
    let mut hashes = Vec::new();
    let list = def.sha256.as_deref().unwrap_or(&[]);
    if list.is_empty() && !ctx.unread(&format!("api_keys.{}.sha256", name.get_ref())) {
        ctx.push(
            Diagnostic::error(codes::API_KEY_HASH, name.span(), format!("api key `{}` lists no sha256 hashes", name.get_ref()))
                .help("add sha256 = [\"<64 hex>\"]; compute one with `printf %s \"$KEY\" | sha256sum`"),
        );
    }
    for h in list {
        match decode_hex32(h.get_ref()) {
            Some(bytes) => hashes.push(bytes),
            None => ctx.push(
                Diagnostic::error(codes::API_KEY_HASH, h.span(), "this is not a SHA-256 hash (64 hex characters)")
                    .help("policies hold hashes only, never keys: `printf %s \"$KEY\" | sha256sum`"),
            ),
        }
    }
    for h in list.iter().filter(|h| decode_hex32(h.get_ref()).is_some_and(|b| KNOWN_KEY_HASHES.contains(&edgeguard_core::bundle::hex(&b).as_str()))) {
        ctx.push(
            Diagnostic::warning(codes::KNOWN_KEY_HASH, h.span(), "this hash is of a key printed in edgeguard's own docs or fixtures: anyone can send it")
                .help("make a key of your own (`openssl rand -hex 32`) and put its SHA-256 here"),
        );
    }
    let failures = failure_limit(ctx, name, def.failures.as_ref(), limits);
    Some(ApiKey { name: name.get_ref().clone(), header, sha256: hashes, failures })
}

/// The limit a key's failed attempts count against, added to the limit table as
/// `api-key:<name>` (per client address, in the isolate); `None` with `failures = "off"`.
fn failure_limit(ctx: &mut Ctx, name: &S<String>, value: Option<&S<String>>, limits: &mut crate::limits::Limits) -> Option<u16> {
    let text = value.map_or(DEFAULT_KEY_FAILURES, |v| v.get_ref().as_str());
    if text == "off" {
        return None;
    }
    let (count, window_secs) = match crate::units::rate(text) {
        Ok(r) => r,
        Err(e) => {
            let span = value.map_or_else(|| name.span(), S::span);
            ctx.push(Diagnostic::error(codes::RATE, span, e).help("a rate such as \"10/1m\" (failed attempts per window), or \"off\""));
            return None;
        }
    };
    let limit_name = format!("api-key:{}", name.get_ref());
    let index = u16::try_from(limits.table.len()).ok()?;
    limits.table.push(Limit::local_per_ip(&limit_name, count, window_secs, count));
    Some(index)
}

/// SHA-256 of the example keys edgeguard's docs and fixtures print: a policy accepting one
/// accepts a key anyone can read (held in sync with the docs by `tests::known_hashes_are_the_docs`).
pub const KNOWN_KEY_HASHES: [&str; 3] = [
    "4cc0a134f7f38810da1594383a45f5987c5b3b10f7cd058678695dd40928d64a",
    "890d88bd27926799883ec0e9fb1585a21d42b20729ecfcce908a900ef76ae9d7",
    "f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a",
];

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.trim().as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = core::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}
