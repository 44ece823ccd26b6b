//! Environment overlays: `[env.<name>]` merged over the rest of the policy before it is read.
//!
//! Tables merge key by key; any other value replaces. `routes` in an overlay merge into the
//! base route with the same `path`; routes with a new path are appended. Values keep their
//! own source spans, so a diagnostic about an overlaid value points into the overlay.

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

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
