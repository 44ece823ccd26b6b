//! `[sessions.<name>]`, a route's `require_session` and limits keyed `session:<claim>`
//! (edgeguard_core::sessions verifies them at run time).

use core::ops::Range;

use edgeguard_core::bundle::SessionKey;
use edgeguard_core::sessions::{ClaimRule, Requirement, Source, alg};

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::{ClaimValues, RequireSessionRef, S, SessionDef};
use crate::names::Names;
use crate::units::duration;
use crate::{Ctx, access, codes};

/// Clock skew allowed on `exp`/`nbf` unless `leeway` says otherwise.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// How long a fetched JWKS is used unless `jwks_cache` says otherwise.
pub const DEFAULT_JWKS_TTL_SECS: u64 = 600;

/// The compiled sources, and the claims each must keep (claim paths are added as routes and
/// limits name them; every source keeps `sub`).
pub struct Table {
    pub sources: Vec<Source>,
    names: Names,
}

impl Table {
    /// The index of `path` among `source`'s kept claims, adding it.
    fn claim(&mut self, source: u16, path: &str) -> Option<u16> {
        let claims = &mut self.sources.get_mut(usize::from(source))?.claims;
        if let Some(i) = claims.iter().position(|c| c == path) {
            return u16::try_from(i).ok();
        }
        claims.push(path.to_owned());
        u16::try_from(claims.len().saturating_sub(1)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

pub fn compile(ctx: &mut Ctx, defs: &crate::model::Map<SessionDef>) -> Table {
    let mut table = Table { sources: Vec::new(), names: Names::new("sessions", "session source", codes::UNDEFINED_SESSION, " with jwks_url or secret") };
    for (name, def) in defs {
        let index = source(ctx, name, def).and_then(|s| {
            let index = u16::try_from(table.sources.len()).ok()?;
            table.sources.push(s);
            Some(index)
        });
        table.names.define(name.get_ref(), index);
    }
    table
}

fn source(ctx: &mut Ctx, name: &S<String>, def: &SessionDef) -> Option<Source> {
    let span = name.span();
    let bad = |ctx: &mut Ctx, at: Range<usize>, message: String, help: &str| ctx.push(Diagnostic::error(codes::SESSION, at, message).help(help.to_owned()));
    let mut ok = true;
    let secret = def.secret.as_ref().and_then(|s| {
        let text = s.get_ref();
        let valid = !text.is_empty() && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') && !text.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            bad(ctx, s.span(), format!("`{text}` is not the name of a worker secret"), "`secret` names the worker secret (env var) holding the HS256 key, e.g. \"SUPABASE_JWT_SECRET\"; never the key itself");
            ok = false;
        }
        valid.then(|| text.clone())
    });
    let jwks_url = def.jwks_url.as_ref().and_then(|u| {
        let text = u.get_ref();
        match text.split_once("://") {
            Some(("https", rest)) if !rest.is_empty() => Some(text.clone()),
            Some(("http", rest)) if !rest.is_empty() => {
                ctx.push(
                    Diagnostic::warning(codes::SESSION_JWKS_HTTP, u.span(), "the key set is fetched over plain http: whoever is on the path can hand the edge their own keys")
                        .help("use the https URL (Supabase: https://<ref>.supabase.co/auth/v1/.well-known/jwks.json); http is for a local Supabase only"),
                );
                Some(text.clone())
            }
            _ => {
                bad(ctx, u.span(), format!("`{text}` is not an http(s) URL"), "e.g. \"https://<project-ref>.supabase.co/auth/v1/.well-known/jwks.json\"");
                ok = false;
                None
            }
        }
    });
    if def.secret.is_none() && def.jwks_url.is_none() {
        bad(ctx, span.clone(), format!("session source `{}` has no key: set `jwks_url` (ES256/RS256) or `secret` (HS256)", name.get_ref()), "Supabase: jwks_url = \"https://<ref>.supabase.co/auth/v1/.well-known/jwks.json\", or secret = \"SUPABASE_JWT_SECRET\" for the legacy JWT secret");
        ok = false;
    }
    let mut algorithms = 0u8;
    match &def.algorithms {
        Some(list) => {
            for a in list {
                match alg::from_name(a.get_ref()) {
                    Some(bit) => algorithms |= bit,
                    None => {
                        let d = Diagnostic::error(codes::SESSION, a.span(), format!("`{}` is not an algorithm edgeguard verifies", a.get_ref()));
                        ctx.push(match suggest(a.get_ref(), ["HS256", "ES256", "RS256"]) {
                            Some(best) => d.help(format!("did you mean \"{best}\"? edgeguard verifies HS256, ES256 and RS256; `none` never")),
                            None => d.help("edgeguard verifies HS256, ES256 and RS256; `none` never"),
                        });
                        ok = false;
                    }
                }
            }
        }
        None => {
            if secret.is_some() {
                algorithms |= alg::HS256;
            }
            if jwks_url.is_some() {
                algorithms |= alg::ES256 | alg::RS256;
            }
        }
    }
    if let Some(list) = def.algorithms.as_ref().and_then(|l| l.first()) {
        if algorithms & alg::HS256 != 0 && secret.is_none() {
            bad(ctx, list.span(), "HS256 is accepted but the source has no `secret`".into(), "add secret = \"<WORKER_SECRET_NAME>\", or drop HS256");
            ok = false;
        }
        if algorithms & (alg::ES256 | alg::RS256) != 0 && jwks_url.is_none() {
            bad(ctx, list.span(), "ES256/RS256 are accepted but the source has no `jwks_url`".into(), "add jwks_url, or accept HS256 only");
            ok = false;
        }
    }
    let cookie = match &def.cookie {
        Some(c) => {
            let glob = access::require_cookie(ctx, Some(c));
            ok &= glob.is_some();
            glob
        }
        None => None,
    };
    let bearer = def.bearer.as_ref().is_none_or(|b| *b.get_ref());
    if cookie.is_none() && !bearer && def.cookie.is_none() {
        bad(ctx, span.clone(), format!("session source `{}` reads no token: `bearer = false` and no `cookie`", name.get_ref()), "set cookie = \"sb-*-auth-token\" (Supabase), or keep bearer");
        ok = false;
    }
    let audience = match &def.audience {
        None => Vec::new(),
        Some(ClaimValues::One(a)) => vec![a.clone()],
        Some(ClaimValues::Many(list)) => list.clone(),
    };
    let test_secret = def.test_secret.as_ref().map(|t| t.get_ref().clone());
    if let Some(t) = def.test_secret.as_ref().filter(|t| t.get_ref().len() < 16) {
        bad(ctx, t.span(), "`test_secret` must be at least 16 characters".into(), "any fixed string: it signs the test tokens `edgeguard test` and the playground mint, and the worker never accepts it");
        ok = false;
    }
    let seconds = |ctx: &mut Ctx, v: Option<&S<String>>, default: u64| duration(ctx, v, default.saturating_mul(1000)) / 1000;
    let leeway_secs = seconds(ctx, def.leeway.as_ref(), DEFAULT_LEEWAY_SECS);
    if let Some(l) = def.leeway.as_ref().filter(|_| leeway_secs > 300) {
        bad(ctx, l.span(), format!("a leeway of {leeway_secs} s would accept tokens that expired minutes ago"), "clocks drift by seconds: keep leeway at most \"5m\" (default \"30s\")");
        ok = false;
    }
    let jwks_ttl_secs = seconds(ctx, def.jwks_cache.as_ref(), DEFAULT_JWKS_TTL_SECS).max(1);
    ok.then(|| Source {
        name: name.get_ref().clone(),
        cookie,
        bearer,
        secret,
        jwks_url,
        algorithms,
        issuer: def.issuer.as_ref().map(|i| i.get_ref().clone()),
        audience,
        leeway_secs,
        jwks_ttl_secs,
        claims: vec!["sub".to_owned()],
        test_secret,
    })
}

/// A route's `require_session`: a source name, or `{ source, claims = { path = value(s) } }`.
pub fn requirement(ctx: &mut Ctx, table: &mut Table, value: &S<RequireSessionRef>) -> Option<Requirement> {
    let (name, name_span, claims) = match value.get_ref() {
        RequireSessionRef::Source(name) => (name.clone(), value.span(), None),
        RequireSessionRef::Table(t) => match &t.source {
            Some(s) => (s.get_ref().clone(), s.span(), t.claims.as_ref()),
            None if table.sources.len() == 1 => (table.sources.first().map(|s| s.name.clone()).unwrap_or_default(), value.span(), t.claims.as_ref()),
            None => {
                ctx.push(
                    Diagnostic::error(codes::SESSION_CLAIMS, value.span(), "`require_session` does not say which session source")
                        .help("write require_session = { source = \"<name>\", claims = { … } }"),
                );
                return None;
            }
        },
    };
    if table.is_empty() && !ctx.unread("sessions") {
        ctx.push(
            Diagnostic::error(codes::UNDEFINED_SESSION, name_span, format!("session source `{name}` is not defined"))
                .help(format!("define it as [sessions.{name}] with jwks_url or secret")),
        );
        return None;
    }
    let source = table.names.lookup(ctx, &name, name_span)?;
    let mut rules = Vec::new();
    for (path, values) in claims.into_iter().flatten() {
        let text = path.get_ref();
        let valid = !text.is_empty() && text.split('.').all(|p| !p.is_empty()) && text.len() <= 128;
        if !valid {
            ctx.push(Diagnostic::error(codes::SESSION_CLAIMS, path.span(), format!("`{text}` is not a claim path")).help("a claim name, or a dotted path into an object claim: \"role\", \"app_metadata.role\""));
            continue;
        }
        if text.starts_with("user_metadata") {
            ctx.push(
                Diagnostic::warning(codes::SESSION_USER_CLAIM, path.span(), format!("`{text}` is user-editable: a signed-in user can set it to anything with supabase.auth.updateUser"))
                    .help("authorize on app_metadata (written only with the service role) or a custom claim from an auth hook"),
            );
        }
        let any_of: Vec<String> = match values.get_ref() {
            ClaimValues::One(v) => vec![v.clone()],
            ClaimValues::Many(list) => list.clone(),
        };
        if any_of.is_empty() {
            ctx.push(Diagnostic::error(codes::SESSION_CLAIMS, values.span(), format!("claim `{text}` accepts no value, so no session would pass")).help("list the values that pass, e.g. [\"admin\"]"));
            continue;
        }
        let claim = table.claim(source, text)?;
        rules.push(ClaimRule { claim, any_of });
    }
    Some(Requirement { source, claims: rules })
}

/// A limit key `session:<claim>` (the only source) or `session:<source>:<claim>`.
pub fn limit_key(ctx: &mut Ctx, table: &mut Table, text: &str, span: Range<usize>) -> Option<(String, SessionKey)> {
    let (source_name, claim) = match text.split_once(':') {
        Some((s, c)) if table.names.lookup_quiet(s).is_some() => (Some(s), c),
        _ => (None, text),
    };
    let source = match source_name {
        Some(s) => table.names.lookup_quiet(s)?,
        None if table.sources.len() == 1 => 0,
        None if table.is_empty() => {
            if !ctx.unread("sessions") {
                ctx.push(
                    Diagnostic::error(codes::SESSION_LIMIT_KEY, span, format!("`session:{text}` needs a [sessions.<name>] source to read the claim from"))
                        .help("define [sessions.supabase] with jwks_url or secret, or key the limit on \"ip\""),
                );
            }
            return None;
        }
        None => {
            ctx.push(
                Diagnostic::error(codes::SESSION_LIMIT_KEY, span, format!("`session:{text}` does not say which of the {} session sources", table.sources.len()))
                    .help("write \"session:<source>:<claim>\", e.g. \"session:supabase:sub\""),
            );
            return None;
        }
    };
    if claim.is_empty() || claim.split('.').any(str::is_empty) {
        ctx.push(Diagnostic::error(codes::SESSION_LIMIT_KEY, span, format!("`session:{text}` names no claim")).help("e.g. \"session:sub\" (one bucket per user)"));
        return None;
    }
    let index = table.claim(source, claim)?;
    Some((claim.to_owned(), SessionKey { source, claim: index }))
}
