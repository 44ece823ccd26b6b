//! Where a change is written in the policy source, found by the spans of the compiler's TOML parse.

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::{Area, Change};
use crate::diagnostics::line_col;

/// The 1-based line of `source` (a policy's TOML) a change is about: the changed key inside its
/// route or table when it is written there, else the route's `path` or the table header. `None`
/// when nothing fits (e.g. a route that only exists in the other policy).
///
/// Reads the source with the parser the compiler uses, so keys are found by their spans
/// (quoted, dotted or inline alike) and a `#` or `[` inside a string never misleads it.
pub fn locate(source: &str, change: &Change) -> Option<usize> {
    let (doc, _) = DeTable::parse_recoverable(source);
    let doc = Doc { source, root: doc.get_ref() };
    let at = match change.area {
        Area::Routes => doc.route(&change.subject, &change.key),
        Area::Defaults => doc.key_or_header("defaults", &change.key),
        Area::Headers => ["headers.set", "headers.default"]
            .iter()
            .filter_map(|n| doc.table(n))
            .find_map(|t| doc.key_in(t, &change.subject))
            .or_else(|| ["headers", "defaults"].iter().filter_map(|n| doc.table(n)).find_map(|t| doc.mention_in(t, &change.subject)))
            .or_else(|| doc.key_or_header("headers", "preset")),
        Area::Csp if change.subject == "mode" || change.subject == "strict" => doc.key_or_header("csp", &change.subject),
        Area::Csp => doc.table("csp.directives").and_then(|t| doc.key_in(t, &change.subject)).or_else(|| doc.key_or_header("csp", "directives")),
        Area::Https => doc.key_or_header("https", &change.key),
        Area::Limits if change.subject.starts_with('/') => doc.route(&canonical_path(&change.subject), "limit"),
        Area::Limits => doc.key_or_header(&format!("limits.{}", change.subject), &change.key),
        Area::ApiKeys => doc.key_or_header(&format!("api_keys.{}", change.subject), &change.key),
        Area::Origins => doc.key_or_header(&format!("origins.{}", change.subject), &change.key),
        Area::App => doc.key_or_header("app", &change.key),
        Area::Deploy => doc.key_or_header("deploy", &change.key),
        Area::Health => doc.key_or_header("health", &change.key),
        Area::ClientIp => doc.key_or_header("client_ip", &change.key),
        Area::Sanitize => doc.key_or_header("sanitize", &change.key),
        Area::Limiter => doc.key_or_header("limiter", &change.key),
        Area::Cache => doc.key_or_header(&change.subject, &change.key),
    };
    at.map(|offset| line_col(source, offset).0)
}

type Value<'a> = Spanned<DeValue<'a>>;

/// The parsed policy and its text; every answer is a byte offset into the text.
struct Doc<'t, 'a> {
    source: &'t str,
    root: &'t DeTable<'a>,
}

impl<'t, 'a> Doc<'t, 'a> {
    /// Whether a value was written under a `[header]` or `[[header]]` of its own, rather than
    /// inline or by dotted keys: a header's span starts with its `[`.
    fn under_header(&self, value: &Value<'_>) -> bool {
        let header = |v: &Value<'_>| self.source.get(v.span().start..).is_some_and(|s| s.starts_with('['));
        match value.get_ref() {
            DeValue::Table(_) => header(value),
            DeValue::Array(list) => list.iter().next().is_some_and(|first| first.get_ref().is_table() && header(first)),
            _ => false,
        }
    }

    /// The `[a.b]` table of a dotted name, when the policy writes that header.
    fn table(&self, name: &str) -> Option<&'t Value<'a>> {
        let mut table = self.root;
        let mut found = None;
        for part in name.split('.') {
            let value = table.get(part)?;
            table = value.get_ref().as_table()?;
            found = Some(value);
        }
        found.filter(|v| self.under_header(v))
    }

    /// The entries a table's own lines write (not the sub-tables under headers of their own),
    /// in source order.
    fn entries(&self, table: &'t Value<'a>) -> Vec<(&'t Spanned<DeString<'a>>, &'t Value<'a>)> {
        let Some(t) = table.get_ref().as_table() else { return Vec::new() };
        let mut list: Vec<_> = t.iter().filter(|(_, v)| !self.under_header(v)).collect();
        list.sort_by_key(|(k, _)| k.span().start);
        list
    }

    /// Where `key` (any case; bare, quoted or the head of a dotted key) is written in `table`.
    fn key_in(&self, table: &'t Value<'a>, key: &str) -> Option<usize> {
        self.entries(table).into_iter().find(|(k, _)| k.get_ref().eq_ignore_ascii_case(key)).map(|(k, _)| k.span().start)
    }

    /// `key` in the `[name]` table, else that table's header.
    fn key_or_header(&self, name: &str, key: &str) -> Option<usize> {
        let table = self.table(name)?;
        self.key_in(table, key).or(Some(table.span().start))
    }

    /// The first place in `table`'s own entries whose text mentions `needle` (any case): a
    /// header named in a list such as `remove = [...]`.
    fn mention_in(&self, table: &'t Value<'a>, needle: &str) -> Option<usize> {
        let needle = needle.to_ascii_lowercase();
        self.entries(table).into_iter().find_map(|(k, v)| {
            let start = k.span().start;
            let text = self.source.get(start..v.span().end)?.to_ascii_lowercase();
            text.find(&needle).and_then(|i| start.checked_add(i))
        })
    }

    /// `key` in the route whose `path` is `pattern` (compared in canonical form), else its
    /// `path`. Top-level `[[routes]]` first, then routes nested in other tables
    /// (`[[env.staging.routes]]`), each in source order.
    fn route(&self, pattern: &str, key: &str) -> Option<usize> {
        let path_of = |route: &Value<'_>| route.get_ref().get("path").and_then(|p| p.get_ref().as_str()).map(canonical_path);
        let top = self.root.get("routes").map(routes_of).unwrap_or_default();
        let mut nested = Vec::new();
        for (name, value) in self.root.iter() {
            if name.get_ref() != "routes" {
                nested_routes(value, MAX_DEPTH, &mut nested);
            }
        }
        nested.sort_by_key(|r| r.span().start);
        let route = top.into_iter().chain(nested).find(|r| path_of(r).as_deref() == Some(pattern))?;
        self.key_in(route, key).or_else(|| self.key_in(route, "path"))
    }
}

/// The tables of a `routes` array.
fn routes_of<'t, 'a>(value: &'t Value<'a>) -> Vec<&'t Value<'a>> {
    value.get_ref().as_array().map(|list| list.iter().filter(|r| r.get_ref().is_table()).collect()).unwrap_or_default()
}

/// How deep [`nested_routes`] looks: routes nest one table deep in a policy (`env.NAME.routes`);
/// the bound keeps a source of thousand-deep dotted keys from exhausting the stack.
const MAX_DEPTH: usize = 8;

/// Every `routes` array's tables below `value` (a table), down to `depth` tables deep.
fn nested_routes<'t, 'a>(value: &'t Value<'a>, depth: usize, out: &mut Vec<&'t Value<'a>>) {
    let Some(table) = value.get_ref().as_table().filter(|_| depth > 0) else { return };
    for (name, v) in table.iter() {
        if name.get_ref() == "routes" {
            out.extend(routes_of(v));
        } else {
            nested_routes(v, depth.saturating_sub(1), out);
        }
    }
}

/// A written route path in the compiler's canonical form (`[id]` → `:id`, `[...x]` → `**`).
fn canonical_path(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        let catch_all = seg == "**" || (seg.starts_with("[...") && seg.ends_with(']')) || (seg.starts_with("[[...") && seg.ends_with("]]"));
        if catch_all {
            out.push_str("**");
        } else if let Some(name) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            out.push(':');
            out.push_str(name);
        } else {
            out.push_str(seg);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

