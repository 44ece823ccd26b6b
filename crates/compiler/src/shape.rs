//! Structural check of the parsed TOML against the language's JSON Schema (generated from
//! `model.rs`): unknown keys with "did you mean", wrong value types and invalid enum values,
//! all reported at once with exact spans. Each reported value is then taken out of the
//! document and its place noted with [`Ctx::mark_unread`], so serde reads everything else and
//! the later phases check all that was written correctly, without reporting the values taken
//! out as missing.

use std::collections::HashSet;

use core::ops::Range;

use serde_json::Value as Json;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::Ctx;
use crate::diagnostics::{Diagnostic, suggest};

use crate::codes::{BAD_ENUM, UNKNOWN_KEY, WRONG_TYPE};

pub struct Shape {
    root: Json,
}

/// One walk over a document: where findings go, and which were reported already.
struct Walk<'c> {
    ctx: &'c mut Ctx,
    /// (code, span) of every finding so far: `env::apply` copies the active overlay's values
    /// into the rest of the document, and each is reported once.
    reported: HashSet<(&'static str, usize, usize)>,
}

impl Walk<'_> {
    fn report(&mut self, d: Diagnostic) {
        if self.reported.insert((d.code, d.span.start, d.span.end)) {
            self.ctx.push(d);
        }
    }
}

impl Shape {
    pub fn new(schema: Json) -> Shape {
        Shape { root: schema }
    }

    /// Check a whole document (the active `[env.*]` overlay merged in) and take out every value
    /// it reports. The overlays under `env` go first, so an error in the active one is named by
    /// its place in the overlay.
    pub fn check(&self, ctx: &mut Ctx, doc: &mut DeTable<'_>) {
        let mut walk = Walk { ctx, reported: HashSet::new() };
        let overlays = doc.remove_entry("env");
        let env_schema = self.root.get("properties").and_then(|p| p.get("env")).unwrap_or(&Json::Null);
        let overlays = overlays.and_then(|(key, mut value)| {
            let readable = self.check_value(&mut walk, &mut value, env_schema, "env");
            if !readable {
                walk.ctx.mark_unread("env");
            }
            readable.then_some((key, value))
        });
        self.check_table(&mut walk, doc, &self.root, "");
        if let Some((key, value)) = overlays {
            doc.insert(key, value);
        }
    }

    fn resolve<'s>(&'s self, mut schema: &'s Json) -> &'s Json {
        // `$ref: "#/$defs/Name"` (or "#", the whole policy, for `env.*`) chains are short; bound
        // them anyway.
        for _ in 0..16 {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else { break };
            let target = match reference.strip_prefix("#/$defs/") {
                Some(name) => self.root.get("$defs").and_then(|d| d.get(name)),
                None => (reference == "#").then_some(&self.root),
            };
            match target {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// Check one value; `false` when it was reported and the caller should take it out. An
    /// array with one bad item goes as a whole: what is left of it would be a different list.
    fn check_value(&self, walk: &mut Walk<'_>, value: &mut Spanned<DeValue<'_>>, schema: &Json, path: &str) -> bool {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Json::as_array) {
            let alternatives: Vec<&Json> = alternatives
                .iter()
                .map(|a| self.resolve(a))
                .filter(|a| a.get("type").and_then(Json::as_str) != Some("null"))
                .collect();
            // An enum of words: every alternative is a `const` or an `enum` of strings (schemars
            // writes documented variants as `const`, undocumented ones grouped in an `enum`).
            let word_lists: Vec<Vec<&str>> = alternatives.iter().copied().filter_map(enum_words).collect();
            if !word_lists.is_empty() && word_lists.len() == alternatives.len() {
                let consts: Vec<&str> = word_lists.into_iter().flatten().collect();
                return check_enum(walk, value, &consts, path);
            }
            return match alternatives.iter().find(|a| accepts(a, value.get_ref())) {
                Some(chosen) => self.check_value(walk, value, chosen, path),
                None => {
                    let expected: Vec<String> = alternatives.iter().map(|a| type_names(a)).collect();
                    walk.report(wrong_type(value, path, &expected.join(" or ")));
                    false
                }
            };
        }
        if let Some(values) = schema.get("enum").and_then(Json::as_array) {
            let consts: Vec<&str> = values.iter().filter_map(Json::as_str).collect();
            return check_enum(walk, value, &consts, path);
        }
        if !accepts(schema, value.get_ref()) {
            walk.report(wrong_type(value, path, &type_names(schema)));
            return false;
        }
        let span = value.span();
        match value.get_mut() {
            DeValue::Table(table) => {
                self.check_table(walk, table, schema, path);
                true
            }
            DeValue::Array(items) => {
                let item_schema = schema.get("items").unwrap_or(&Json::Null);
                let mut readable = true;
                for (i, item) in items.iter_mut().enumerate() {
                    readable &= self.check_value(walk, item, item_schema, &format!("{path}[{i}]"));
                }
                readable
            }
            DeValue::Integer(n) if i64::from_str_radix(n.as_str(), n.radix()).is_err() => {
                walk.report(out_of_range(span, path, "a whole number from -9223372036854775808 to 9223372036854775807"));
                false
            }
            DeValue::Float(f) if !f.as_str().parse::<f64>().is_ok_and(|x| x.is_finite() || f.as_str().contains("inf")) => {
                walk.report(out_of_range(span, path, "a number a 64-bit float can hold"));
                false
            }
            _ => true,
        }
    }

    /// Check a table's entries and take out the ones reported.
    fn check_table(&self, walk: &mut Walk<'_>, table: &mut DeTable<'_>, schema: &Json, path: &str) {
        let schema = self.resolve(schema);
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        let mut unreadable = Vec::new();
        for (key, value) in table.iter_mut() {
            let name: &str = key.get_ref();
            let child_path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
            let readable = match (properties.and_then(|p| p.get(name)), additional) {
                (Some(prop), _) => self.check_value(walk, value, prop, &child_path),
                (None, Some(extra @ Json::Object(_))) => self.check_value(walk, value, extra, &child_path),
                (None, Some(Json::Bool(false))) => {
                    let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                    let section = if path.is_empty() { "the top level".to_owned() } else { format!("[{path}]") };
                    let mut d = Diagnostic::error(UNKNOWN_KEY, key.span(), format!("unknown key `{name}` in {section}"));
                    d = match suggest(name, known.iter().copied()) {
                        Some(best) => {
                            // The key it most likely stands for counts as written but unreadable.
                            walk.ctx.mark_unread(&if path.is_empty() { best.to_owned() } else { format!("{path}.{best}") });
                            d.help(format!("did you mean `{best}`?"))
                        }
                        None => d.help(format!("known keys here: {}", known.join(", "))),
                    };
                    walk.report(d);
                    unreadable.push(key.clone());
                    continue;
                }
                _ => true,
            };
            if !readable {
                walk.ctx.mark_unread(&child_path);
                unreadable.push(key.clone());
            }
        }
        for key in unreadable {
            table.remove(key.get_ref().as_ref());
        }
    }
}

/// Take out the values a TOML syntax error touches: the parser's recovery guessed them (an
/// unterminated string, a bare word read as a string, a table header that runs on), so checking
/// them would only report the guess. A table of an array of tables is emptied instead.
pub fn drop_guessed(table: &mut DeTable<'_>, errors: &[Range<usize>]) {
    let mut guessed = Vec::new();
    for (key, value) in table.iter_mut() {
        if touches(value.span(), errors) {
            guessed.push(key.clone());
            continue;
        }
        match value.get_mut() {
            DeValue::Table(inner) => drop_guessed(inner, errors),
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    let touched = touches(item.span(), errors);
                    if let DeValue::Table(inner) = item.get_mut() {
                        if touched {
                            *inner = DeTable::default();
                        }
                        drop_guessed(inner, errors);
                    }
                }
            }
            _ => {}
        }
    }
    for key in guessed {
        table.remove(key.get_ref().as_ref());
    }
}

fn touches(span: Range<usize>, errors: &[Range<usize>]) -> bool {
    errors.iter().any(|e| e.start <= span.end && span.start <= e.end)
}

fn check_enum(walk: &mut Walk<'_>, value: &Spanned<DeValue<'_>>, allowed: &[&str], path: &str) -> bool {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    match value.get_ref().as_str() {
        Some(s) if allowed.contains(&s) => true,
        Some(s) => {
            let mut d = Diagnostic::error(BAD_ENUM, value.span(), format!("`{path}` cannot be \"{s}\""));
            d = match suggest(s, allowed.iter().copied()) {
                Some(best) => d.help(format!("did you mean \"{best}\"? (one of {})", quoted.join(", "))),
                None => d.help(format!("use one of {}", quoted.join(", "))),
            };
            walk.report(d);
            false
        }
        None => {
            walk.report(wrong_type(value, path, "a string"));
            false
        }
    }
}
/// The words of a `const` or string `enum` schema.
fn enum_words(schema: &Json) -> Option<Vec<&str>> {
    if let Some(c) = schema.get("const").and_then(Json::as_str) {
        return Some(vec![c]);
    }
    schema.get("enum").and_then(Json::as_array).map(|v| v.iter().filter_map(Json::as_str).collect())
}

fn toml_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "float",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "table",
    }
}

fn schema_types(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).filter(|t| *t != "null").collect(),
        _ => Vec::new(),
    }
}

/// Whether a schema (without anyOf) admits a TOML value's type. No `type` = anything.
fn accepts(schema: &Json, value: &DeValue<'_>) -> bool {
    if schema.get("const").is_some() {
        return value.is_str();
    }
    let types = schema_types(schema);
    if types.is_empty() {
        return true;
    }
    types.iter().any(|t| {
        matches!(
            (*t, value),
            ("string", DeValue::String(_))
                | ("integer", DeValue::Integer(_))
                | ("number", DeValue::Integer(_) | DeValue::Float(_))
                | ("boolean", DeValue::Boolean(_))
                | ("array", DeValue::Array(_))
                | ("object", DeValue::Table(_))
        )
    })
}

fn type_names(schema: &Json) -> String {
    let types = schema_types(schema);
    if types.is_empty() {
        return "a value".into();
    }
    let names: Vec<&str> = types
        .iter()
        .map(|t| match *t {
            "object" => "a table",
            "array" => "an array",
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "true or false",
            other => other,
        })
        .collect();
    names.join(" or ")
}

fn wrong_type(value: &Spanned<DeValue<'_>>, path: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(
        WRONG_TYPE,
        value.span(),
        format!("`{path}` must be {expected}, not {} {}", article(toml_type(value.get_ref())), toml_type(value.get_ref())),
    )
    .help(format!("see `{path}` in docs/policy.md"))
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// A number of the right type that the reader cannot hold.
fn out_of_range(span: Range<usize>, path: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(WRONG_TYPE, span, format!("`{path}` is out of range: it must be {expected}")).help(format!("see `{path}` in docs/policy.md"))
}
