//! `[health]`: the edge's own health endpoint and the origin probe it reports.

use edgeguard_core::bundle::Health;

use crate::diagnostics::Diagnostic;
use crate::units::{DURATION_HELP, duration_ms};
use crate::{Ctx, codes, model};

/// Everything but the header set index, which the caller fills in.
pub fn compile(ctx: &mut Ctx, h: Option<&model::Health>) -> Option<Health> {
    let h = h?;
    let path = |ctx: &mut Ctx, v: Option<&model::S<String>>, default: &str| -> String {
        let Some(v) = v else { return default.to_owned() };
        match edgeguard_core::sanitize::normalize_path(v.get_ref()) {
            Ok(p) if v.get_ref().starts_with('/') && p == *v.get_ref() => p,
            _ => {
                ctx.push(
                    Diagnostic::error(codes::HEALTH, v.span(), format!("`{}` is not a normalized absolute path", v.get_ref()))
                        .help("write a path such as \"/__edge/health\""),
                );
                default.to_owned()
            }
        }
    };
    let duration = |ctx: &mut Ctx, v: Option<&model::S<String>>, default: u64| -> u64 {
        let Some(v) = v else { return default };
        match duration_ms(v.get_ref()) {
            Ok(ms) => ms,
            Err(e) => {
                ctx.push(Diagnostic::error(codes::DURATION, v.span(), e).help(DURATION_HELP));
                default
            }
        }
    };
    Some(Health {
        path: path(ctx, h.path.as_ref(), "/__edge/health"),
        probe_path: path(ctx, h.probe_path.as_ref(), "/api/health"),
        timeout_ms: duration(ctx, h.timeout.as_ref(), 2_000),
        cache_ms: duration(ctx, h.cache.as_ref(), 10_000),
        headers: 0,
    })
}
