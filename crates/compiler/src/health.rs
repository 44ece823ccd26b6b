//! `[health]`: the edge's own health endpoint and the origin probe it reports.

use edgeguard_core::bundle::Health;
use edgeguard_core::health::DEFAULT_WARN_AFTER_MS;

use crate::diagnostics::Diagnostic;
use crate::units::duration;
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
    let timeout_ms = duration(ctx, h.timeout.as_ref(), 2_000);
    let mut warn_after_ms = duration(ctx, h.warn_after.as_ref(), DEFAULT_WARN_AFTER_MS);
    // Zero warns on every probe; at or past the timeout it can never fire (the probe is
    // abandoned there and fails instead).
    if let Some(v) = h.warn_after.as_ref().filter(|_| warn_after_ms == 0 || warn_after_ms >= timeout_ms) {
        ctx.push(
            Diagnostic::error(codes::HEALTH_WARN_AFTER, v.span(), format!("`warn_after = \"{}\"` must be more than 0 and less than the probe timeout ({timeout_ms} ms)", v.get_ref()))
                .help("a probe slower than `warn_after` turns its origin's check to warn; QuoteKit's target is \"100ms\""),
        );
        warn_after_ms = DEFAULT_WARN_AFTER_MS.min(timeout_ms.saturating_sub(1));
    }
    Some(Health {
        path: path(ctx, h.path.as_ref(), "/__edge/health"),
        probe_path: path(ctx, h.probe_path.as_ref(), "/api/health"),
        timeout_ms,
        cache_ms: duration(ctx, h.cache.as_ref(), 10_000),
        warn_after_ms,
        headers: 0,
    })
}

#[cfg(test)]
mod tests {
    use crate::{Options, compile as compile_policy};

    const PRELUDE: &str = "version = 1\n[origins.app]\nurl = \"https://app.fly.dev\"\n";

    fn health_of(body: &str) -> (Option<edgeguard_core::bundle::Health>, Vec<&'static str>) {
        let out = compile_policy(&format!("{PRELUDE}{body}"), &Options::default());
        let codes = out.diagnostics.iter().map(|d| d.code).collect();
        (out.bundle.and_then(|b| b.health), codes)
    }

    #[test]
    fn warn_after_defaults_to_the_roadmap_target() {
        let (h, codes) = health_of("[health]\n");
        assert!(codes.is_empty(), "{codes:?}");
        let h = h.unwrap();
        assert_eq!((h.timeout_ms, h.warn_after_ms), (2_000, 100));
        let (h, _) = health_of("[health]\ntimeout = \"1s\"\nwarn_after = \"250ms\"\n");
        assert_eq!(h.unwrap().warn_after_ms, 250);
    }

    #[test]
    fn warn_after_must_fall_inside_the_timeout() {
        for body in ["[health]\nwarn_after = \"0ms\"\n", "[health]\nwarn_after = \"2s\"\n", "[health]\ntimeout = \"500ms\"\nwarn_after = \"1s\"\n"] {
            let out = compile_policy(&format!("{PRELUDE}{body}"), &Options::default());
            let d = out.diagnostics.iter().find(|d| d.code == "E091").unwrap_or_else(|| panic!("{body}: {:?}", out.diagnostics));
            assert!(d.help.as_deref().is_some_and(|h| h.contains("100ms")), "{d:?}");
        }
        let (_, codes) = health_of("[health]\nwarn_after = \"fast\"\n");
        assert_eq!(codes, ["E010"]);
    }
}
