//! Structural check of the parsed TOML against the language's JSON Schema (generated from
//! `model.rs`): unknown keys with "did you mean", wrong value types and invalid enum values,
//! all reported at once with exact spans. Only a document that passes is handed to serde, so
//! the reader never stops at the first mistake.

use serde_json::Value as Json;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::Ctx;
use crate::diagnostics::{Diagnostic, suggest};

use crate::codes::{BAD_ENUM, UNKNOWN_KEY, WRONG_TYPE};

pub struct Shape {
    root: Json,
}

impl Shape {
    pub fn new(schema: Json) -> Shape {
        Shape { root: schema }
    }

    /// Check a whole document.
    pub fn check(&self, ctx: &mut Ctx, doc: &Spanned<DeTable<'_>>) {
        self.check_table(ctx, doc.get_ref(), &self.root, "");
    }

    fn resolve<'s>(&'s self, mut schema: &'s Json) -> &'s Json {
        // `$ref: "#/$defs/Name"` chains are short; bound them anyway.
        for _ in 0..16 {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else { break };
            let Some(name) = reference.strip_prefix("#/$defs/") else { break };
            match self.root.get("$defs").and_then(|d| d.get(name)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn check_value(&self, ctx: &mut Ctx, value: &Spanned<DeValue<'_>>, schema: &Json, path: &str) {
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
                return self.check_enum(ctx, value, &consts, path);
            }
            match alternatives.iter().find(|a| accepts(a, value.get_ref())) {
                Some(chosen) => self.check_value(ctx, value, chosen, path),
                None => {
                    let expected: Vec<String> = alternatives.iter().map(|a| type_names(a)).collect();
                    ctx.push(wrong_type(value, path, &expected.join(" or ")));
                }
            }
            return;
        }
        if let Some(values) = schema.get("enum").and_then(Json::as_array) {
            let consts: Vec<&str> = values.iter().filter_map(Json::as_str).collect();
            return self.check_enum(ctx, value, &consts, path);
        }
        if !accepts(schema, value.get_ref()) {
            ctx.push(wrong_type(value, path, &type_names(schema)));
            return;
        }
        match value.get_ref() {
            DeValue::Table(table) => self.check_table(ctx, table, schema, path),
            DeValue::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(ctx, item, item_schema, &format!("{path}[{i}]"));
                    }
                }
            }
            _ => {}
        }
    }

    fn check_enum(&self, ctx: &mut Ctx, value: &Spanned<DeValue<'_>>, allowed: &[&str], path: &str) {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        match value.get_ref().as_str() {
            Some(s) if allowed.contains(&s) => {}
            Some(s) => {
                let mut d = Diagnostic::error(BAD_ENUM, value.span(), format!("`{path}` cannot be \"{s}\""));
                d = match suggest(s, allowed.iter().copied()) {
                    Some(best) => d.help(format!("did you mean \"{best}\"? (one of {})", quoted.join(", "))),
                    None => d.help(format!("use one of {}", quoted.join(", "))),
                };
                ctx.push(d);
            }
            None => ctx.push(wrong_type(value, path, "a string")),
        }
    }

    fn check_table(&self, ctx: &mut Ctx, table: &DeTable<'_>, schema: &Json, path: &str) {
        let schema = self.resolve(schema);
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let child_path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
            if let Some(prop) = properties.and_then(|p| p.get(name)) {
                self.check_value(ctx, value, prop, &child_path);
                continue;
            }
            match additional {
                Some(Json::Object(_)) => {
                    if let Some(extra) = additional {
                        self.check_value(ctx, value, extra, &child_path);
                    }
                }
                Some(Json::Bool(false)) => {
                    let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                    let section = if path.is_empty() { "the top level".to_owned() } else { format!("[{path}]") };
                    let mut d = Diagnostic::error(UNKNOWN_KEY, key.span(), format!("unknown key `{name}` in {section}"));
                    d = match suggest(name, known.iter().copied()) {
                        Some(best) => d.help(format!("did you mean `{best}`?")),
                        None => d.help(format!("known keys here: {}", known.join(", "))),
                    };
                    ctx.push(d);
                }
                _ => {}
            }
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
