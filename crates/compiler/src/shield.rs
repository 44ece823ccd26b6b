//! `[shield]`: mode, threshold, window, cool-down, status, the policy's own probe paths and the
//! signature families it turns off. The signatures themselves live in the engine
//! (edgeguard-core's `shield.rs`, documented in docs/shield.md).

use edgeguard_core::glob::Glob;
use edgeguard_core::shield::{Kind, Shield};

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::{ShieldDef, ShieldMode};
use crate::units::duration;
use crate::{Ctx, codes};

pub const DEFAULT_THRESHOLD: u32 = 5;
pub const DEFAULT_WINDOW_MS: u64 = 60_000;
pub const DEFAULT_COOLDOWN_MS: u64 = 15 * 60_000;

pub fn compile(ctx: &mut Ctx, def: Option<&ShieldDef>) -> Option<Shield> {
    let def = def?;
    let enforce = def.mode.as_ref().is_some_and(|m| *m.get_ref() == ShieldMode::Enforce);
    let threshold = match &def.threshold {
        None => DEFAULT_THRESHOLD,
        Some(t) => match u32::try_from(*t.get_ref()) {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                ctx.push(
                    Diagnostic::error(codes::SHIELD, t.span(), format!("shield.threshold is {}; it must be between 1 and 1000", t.get_ref()))
                        .help("the number of suspicious requests within `window` that suspends a client; 5 is the default"),
                );
                DEFAULT_THRESHOLD
            }
        },
    };
    if let Some(t) = def.threshold.as_ref().filter(|_| enforce && threshold == 1) {
        ctx.push(
            Diagnostic::warning(codes::SHIELD_HAIR_TRIGGER, t.span(), "with threshold = 1 a single false positive suspends a client for the whole cool-down")
                .help("keep a threshold of 3 or more, and run in mode = \"shadow\" first to see what the signatures match in your traffic"),
        );
    }
    let secs = |ctx: &mut Ctx, value: Option<&crate::model::S<String>>, default_ms: u64, what: &str| {
        let ms = duration(ctx, value, default_ms);
        if let Some(v) = value.filter(|_| !(1_000..=7 * 86_400_000).contains(&ms)) {
            ctx.push(Diagnostic::error(codes::SHIELD, v.span(), format!("shield.{what} must be between 1s and 7d")).help("e.g. \"1m\" for the window, \"15m\" for the cool-down"));
            return default_ms / 1_000;
        }
        ms.div_ceil(1_000)
    };
    let window_secs = secs(ctx, def.window.as_ref(), DEFAULT_WINDOW_MS, "window");
    let cooldown_secs = secs(ctx, def.cooldown.as_ref(), DEFAULT_COOLDOWN_MS, "cooldown");
    let status = match &def.status {
        None => 403,
        Some(s) if matches!(*s.get_ref(), 403 | 429) => *s.get_ref() as u16,
        Some(s) => {
            ctx.push(
                Diagnostic::error(codes::SHIELD, s.span(), format!("shield.status is {}; it must be 403 or 429", s.get_ref()))
                    .help("403 says \"refused\"; 429 says \"slow down\" and is what clients that back off understand"),
            );
            403
        }
    };
    let mut paths = Vec::new();
    for p in def.paths.iter().flatten() {
        let text = p.get_ref().trim();
        if !text.starts_with('/') {
            ctx.push(
                Diagnostic::error(codes::SHIELD_PATH, p.span(), format!("shield path `{text}` must start with `/`"))
                    .help("write the path as requested, `*` matching any characters: \"/old-admin/*\""),
            );
            continue;
        }
        paths.push(Glob::new(&text.to_ascii_lowercase()));
    }
    let mut ignore = 0u16;
    for f in def.ignore.iter().flatten() {
        match Kind::from_code(f.get_ref().trim()).filter(|k| *k != Kind::Policy) {
            Some(kind) => ignore |= kind.bit(),
            None => {
                let names: Vec<&str> = Kind::ALL.iter().filter(|k| **k != Kind::Policy).map(|k| k.code()).collect();
                let mut d = Diagnostic::error(codes::SHIELD_FAMILY, f.span(), format!("`{}` is not a shield signature family", f.get_ref()));
                d = match suggest(f.get_ref(), names.iter().copied()) {
                    Some(best) => d.help(format!("did you mean `{best}`? families: {}", names.join(", "))),
                    None => d.help(format!("families: {}", names.join(", "))),
                };
                ctx.push(d);
            }
        }
    }
    Some(Shield { enforce, threshold, window_secs, cooldown_secs, status, paths, ignore })
}
