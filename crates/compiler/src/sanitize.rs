//! `[sanitize]`: the request size limits checked before anything else.

use edgeguard_core::bundle::SanitizeLimits;

use crate::units::{SIZE_HELP, size_bytes};
use crate::{Ctx, codes, model};

pub const DEFAULT_MAX_URL: u32 = 8 * 1024;
pub const DEFAULT_MAX_HEADER_BYTES: u32 = 32 * 1024;
pub const DEFAULT_MAX_HEADERS: u32 = 100;

pub fn compile(ctx: &mut Ctx, s: Option<&model::Sanitize>) -> SanitizeLimits {
    let mut limits = SanitizeLimits {
        max_url_bytes: DEFAULT_MAX_URL,
        max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        max_headers: DEFAULT_MAX_HEADERS,
        strip_headers: Vec::new(),
    };
    let Some(s) = s else { return limits };
    let size = |ctx: &mut Ctx, v: &model::S<String>, out: &mut u32| match size_bytes(v.get_ref()) {
        Ok(n) if n >= 256 && n <= u64::from(u32::MAX) => *out = n as u32,
        Ok(_) => ctx.push(ctx_error(v.span(), "must be between 256B and 4GiB")),
        Err(e) => ctx.push(crate::diagnostics::Diagnostic::error(codes::SIZE, v.span(), e).help(SIZE_HELP)),
    };
    if let Some(v) = &s.max_url {
        size(ctx, v, &mut limits.max_url_bytes);
    }
    if let Some(v) = &s.max_header_bytes {
        size(ctx, v, &mut limits.max_header_bytes);
    }
    for h in s.strip_headers.iter().flatten() {
        if let Some(name) = crate::headers::validate_name(ctx, h)
            && !limits.strip_headers.contains(&name)
        {
            limits.strip_headers.push(name);
        }
    }
    if let Some(v) = &s.max_headers {
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= 8 => limits.max_headers = n,
            _ => ctx.push(ctx_error(v.span(), "must be a whole number of at least 8")),
        }
    }
    limits
}

fn ctx_error(span: core::ops::Range<usize>, msg: &str) -> crate::diagnostics::Diagnostic {
    crate::diagnostics::Diagnostic::error(codes::SIZE, span, format!("this limit {msg}"))
}
