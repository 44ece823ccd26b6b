//! Environment overlays: `[env.<name>]` merged over the rest of the policy before it is read.
//!
//! Tables merge key by key; any other value replaces. `routes` in an overlay merge into the
//! base route with the same `path`; routes with a new path are appended. Values keep their
//! own source spans, so a diagnostic about an overlaid value points into the overlay.

use core::ops::Range;

use edgeguard_core::bundle::{Bundle, Origin, Route};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::diagnostics::Diagnostic;
use crate::{Compiled, Ctx, Options, codes};

/// The environment named by `app.environment`, if written.
pub fn declared(doc: &DeTable<'_>) -> Option<String> {
    let app = doc.get("app")?.get_ref().as_table()?;
    app.get("environment")?.get_ref().as_str().map(str::to_owned)
}

/// Names of all overlays, with the span of each name.
pub fn overlay_names(doc: &DeTable<'_>) -> Vec<String> {
    doc.get("env")
        .and_then(|e| e.get_ref().as_table())
        .map(|t| t.iter().map(|(k, _)| k.get_ref().to_string()).collect())
        .unwrap_or_default()
}

/// Merge `[env.<env>]` into the document (no-op when there is no such overlay).
pub fn apply(doc: &mut DeTable<'_>, env: &str) {
    let overlay = doc
        .get("env")
        .and_then(|e| e.get_ref().as_table())
        .and_then(|t| t.get(env))
        .and_then(|o| o.get_ref().as_table())
        .cloned();
    if let Some(overlay) = overlay {
        merge_tables(doc, overlay);
    }
}

fn merge_tables<'i>(base: &mut DeTable<'i>, overlay: DeTable<'i>) {
    for (key, value) in overlay {
        let name: &str = key.get_ref();
        match (base.get_mut(name), value.get_ref()) {
            (Some(existing), DeValue::Table(_)) if existing.get_ref().is_table() => {
                if let (DeValue::Table(b), DeValue::Table(o)) = (existing.get_mut(), value.into_inner()) {
                    merge_tables(b, o);
                }
            }
            (Some(existing), DeValue::Array(_)) if name == "routes" && existing.get_ref().is_array() => {
                if let (DeValue::Array(b), DeValue::Array(o)) = (existing.get_mut(), value.into_inner()) {
                    merge_routes(b, o);
                }
            }
            _ => {
                base.insert(key, value);
            }
        }
    }
}

fn route_path<'a>(route: &'a Spanned<DeValue<'_>>) -> Option<&'a str> {
    route.get_ref().as_table()?.get("path")?.get_ref().as_str()
}

fn merge_routes<'i>(base: &mut DeArray<'i>, overlay: DeArray<'i>) {
    for route in overlay {
        let path = route_path(&route).map(str::to_owned);
        let existing = path.as_deref().and_then(|p| base.iter_mut().find(|r| route_path(r) == Some(p)));
        match existing {
            Some(target) => {
                if let (DeValue::Table(b), DeValue::Table(o)) = (target.get_mut(), route.into_inner()) {
                    merge_tables(b, o);
                }
            }
            None => base.push(route),
        }
    }
}

/// A route that the policy's own environment blocks (`only_in`/`except_in`) and the compiled
/// one forwards.
pub struct Unblocked {
    /// Index in the compiled bundle's routes.
    pub route: usize,
    /// The route's `path`.
    pub span: Range<usize>,
    /// The first `only_in`/`except_in` entry, and what it says.
    pub gate: (Range<usize>, &'static str),
}

/// W031: a route blocked in the policy's own environment (production) that the compiled one
/// (staging) forwards to an origin production uses too, e.g. because the staging overlay
/// inherits production's `[origins]`. A staging edge would then expose the production endpoint
/// the production edge hides. An unpinned route can reach every origin of its bundle (the
/// active one, the canary, and any healthy one when the active one fails its probe), a pinned
/// route only its pin. Compiles the policy once more, for its own environment, when a route
/// is in question.
pub(crate) fn check_unblocked(ctx: &mut Ctx, source: &str, compiled: &Compiled, options: &Options) {
    if compiled.unblocked.is_empty() {
        return;
    }
    let options = Options { env: Some(compiled.own_env.clone()), ..options.clone() };
    let Some(own) = crate::compile_into(&mut Ctx::default(), source, &options) else { return };
    let (bundle, own_env) = (&compiled.bundle, compiled.own_env.as_str());
    let env = bundle.app.environment.as_str();
    for u in &compiled.unblocked {
        let Some(route) = bundle.routes.get(u.route) else { continue };
        let Some(own_route) = own.bundle.routes.iter().find(|r| r.pattern == route.pattern) else { continue };
        let own_origins = reachable(&own.bundle, own_route);
        let mut shared = reachable(bundle, route);
        shared.retain(|o| own_origins.iter().any(|own| own.url.eq_ignore_ascii_case(&o.url)));
        if shared.is_empty() {
            continue;
        }
        let urls: Vec<&str> = shared.iter().map(|o| o.url.as_str()).collect();
        let tables: Vec<String> = shared.iter().map(|o| format!("[env.{env}.origins.{}]", o.name)).collect();
        let noun = if urls.len() == 1 { "origin" } else { "origins" };
        ctx.push(
            Diagnostic::warning(
                codes::UNBLOCKED_ON_SHARED_ORIGIN,
                u.span.clone(),
                format!(
                    "`{}` is blocked in {own_env} but forwarded in {env}, to the {noun} {own_env} uses ({}): a {env} edge exposes what the {own_env} edge hides",
                    route.pattern.as_deref().unwrap_or_default(),
                    urls.join(", ")
                ),
            )
            .help(format!("give {env} its own origins (a `url` in {}), or block the route in every environment", tables.join(" and ")))
            .related(u.gate.0.clone(), u.gate.1),
        );
    }
}

/// The origins a forwarded request on `route` can reach.
fn reachable<'b>(bundle: &'b Bundle, route: &Route) -> Vec<&'b Origin> {
    match route.origin {
        Some(pinned) => bundle.origins.get(usize::from(pinned)).into_iter().collect(),
        None => bundle.origins.iter().collect(),
    }
}
