//! Access rules: CIDR lists, required headers and cookies, API keys (SHA-256 hashes only).

use core::net::IpAddr;

use edgeguard_core::bundle::ApiKey;
use edgeguard_core::cidr::Cidr;
use edgeguard_core::glob::Glob;

use crate::diagnostics::Diagnostic;
use crate::headers::validate_name;
use crate::model::{ApiKeyDef, S};
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

pub fn api_key(ctx: &mut Ctx, name: &S<String>, def: &ApiKeyDef) -> Option<ApiKey> {
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
    Some(ApiKey { name: name.get_ref().clone(), header, sha256: hashes })
}

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
