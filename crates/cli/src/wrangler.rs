//! What a worker `edgeguard build` wrote needs in wrangler.toml — `main`, the Data rule that
//! uploads `*.egb` bundles, the limiter's Durable Object binding and migration — printed as
//! lines to add, or merged into the user's file with toml_edit (comments, formatting and every
//! other setting kept).
//!
//! Environments: wrangler's top level is the deployment a plain `wrangler deploy` makes, and a
//! policy's own `app.environment` (production, usually) is built for it; a build for another
//! environment (`--env staging`) goes into `[env.staging]`. `main` is set per environment,
//! and Durable Object bindings too (wrangler does not inherit them); the Data rule,
//! `compatibility_date` and migrations stay at the top level, which environments inherit.

use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value, value};

use crate::Failure;
use crate::engine;

/// What the worker needs.
pub struct Needs<'a> {
    /// `main`, relative to the wrangler.toml's directory.
    pub main: &'a str,
    /// The wrangler environment (`[env.NAME]`) to set `main` and bindings in; `None`: top level.
    pub env: Option<&'a str>,
    /// The policy has `scope = "global"` limits: the limiter's binding and migration.
    pub limiter: bool,
    /// The policy has `[stats]` or `[slo]`: the fleet statistics object's binding and migration.
    pub stats: bool,
    /// For a new file's `name`.
    pub app: &'a str,
}

/// The lines to add by hand.
pub fn snippet(needs: &Needs) -> String {
    let env_table = needs.env.map(|e| format!("[env.{e}]\n")).unwrap_or_default();
    let mut out = format!(
        "compatibility_date = \"{}\"\nrules = [{{ type = \"Data\", globs = [\"{}\"], fallthrough = true }}]\n",
        engine::COMPATIBILITY_DATE,
        engine::DATA_RULE_GLOB
    );
    for (_, class, _, tag) in classes(needs) {
        out.push_str(&format!("\n[[migrations]]\ntag = \"{tag}\"\nnew_sqlite_classes = [\"{class}\"]\n"));
    }
    match needs.env {
        None => out.insert_str(0, &format!("main = \"{}\"\n", needs.main)),
        Some(_) => out.push_str(&format!("\n{env_table}main = \"{}\"\n", needs.main)),
    }
    for (_, class, binding, _) in classes(needs) {
        let prefix = needs.env.map(|e| format!("env.{e}.")).unwrap_or_default();
        out.push_str(&format!("\n[[{prefix}durable_objects.bindings]]\nname = \"{binding}\"\nclass_name = \"{class}\"\n"));
    }
    out
}

/// The Durable Object classes a worker needs: (needed, class, binding, migration tag).
fn classes(needs: &Needs) -> Vec<(bool, &'static str, &'static str, &'static str)> {
    [(needs.limiter, engine::LIMITER_CLASS, engine::LIMITER_BINDING, "edgeguard-v1"), (needs.stats, engine::STATS_CLASS, engine::STATS_BINDING, "edgeguard-stats-v1")]
        .into_iter()
        .filter(|c| c.0)
        .collect()
}

/// `text` (a wrangler.toml, or `None` for a new one) with the needs merged in, and what
/// changed in words; nothing is written here. An error names the part it cannot merge.
pub fn merge(path: &Path, text: Option<&str>, needs: &Needs) -> Result<(String, Vec<String>), Failure> {
    let bad = |what: &str| {
        Failure::usage(format!(
            "`{}`: `{what}` has a shape edgeguard does not edit; add the lines `edgeguard build` prints without --wrangler-toml by hand",
            path.display()
        ))
    };
    let mut doc: DocumentMut = match text {
        Some(text) => text.parse().map_err(|e| Failure::usage(format!("`{}` is not valid TOML: {e}", path.display())))?,
        None => DocumentMut::new(),
    };
    let mut changes = Vec::new();
    if text.is_none() {
        doc.insert("name", value(worker_name(needs.app)));
        changes.push("created".to_owned());
    }
    if doc.get("compatibility_date").is_none() {
        doc.insert("compatibility_date", value(engine::COMPATIBILITY_DATE));
        changes.push(format!("compatibility_date = \"{}\"", engine::COMPATIBILITY_DATE));
    }
    if !has_data_rule(&doc) {
        let mut rule = InlineTable::new();
        rule.insert("type", "Data".into());
        rule.insert("globs", Value::Array(Array::from_iter([engine::DATA_RULE_GLOB])));
        rule.insert("fallthrough", true.into());
        push_entry(&mut doc, "rules", rule).ok_or_else(|| bad("rules"))?;
        changes.push(format!("a Data rule for {}", engine::DATA_RULE_GLOB));
    }
    for (_, class, _, tag) in classes(needs) {
        if lists_class(doc.get("migrations"), class) {
            continue;
        }
        let mut migration = InlineTable::new();
        migration.insert("tag", tag.into());
        migration.insert("new_sqlite_classes", Value::Array(Array::from_iter([class])));
        push_entry(&mut doc, "migrations", migration).ok_or_else(|| bad("migrations"))?;
        changes.push(format!("a migration creating {class}"));
    }
    let (target, at): (&mut Table, String) = match needs.env {
        None => (doc.as_table_mut(), String::new()),
        Some(env) => {
            let envs = doc.entry("env").or_insert(Item::Table(Table::new())).as_table_mut().ok_or_else(|| bad("env"))?;
            envs.set_implicit(true);
            let table = envs.entry(env).or_insert(Item::Table(Table::new())).as_table_mut().ok_or_else(|| bad(&format!("env.{env}")))?;
            (table, format!("[env.{env}] "))
        }
    };
    if target.get("main").and_then(Item::as_str) != Some(needs.main) {
        set_keeping_decor(target, "main", needs.main);
        changes.push(format!("{at}main = \"{}\"", needs.main));
    }
    for (_, class, name, _) in classes(needs) {
        let durable = target.entry("durable_objects").or_insert(Item::Table(Table::new()));
        if let Some(t) = durable.as_table_mut() {
            t.set_implicit(true);
        }
        let bound = binds_class(durable.get("bindings"), class);
        if !bound {
            let mut binding = InlineTable::new();
            binding.insert("name", name.into());
            binding.insert("class_name", class.into());
            let durable = durable.as_table_like_mut().ok_or_else(|| bad("durable_objects"))?;
            let bindings = durable.entry("bindings").or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
            push_item(bindings, binding).ok_or_else(|| bad("durable_objects.bindings"))?;
            changes.push(format!("{at}the {name} Durable Object binding"));
        }
    }
    Ok((doc.to_string(), changes))
}

/// A worker name from the app's: lowercase letters, digits and dashes.
fn worker_name(app: &str) -> String {
    let name: String = app.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let name = name.trim_matches('-');
    if name.is_empty() { "edgeguard".to_owned() } else { format!("{name}-edge") }
}

/// Replace a string value, keeping the comment and spacing around the old one.
fn set_keeping_decor(table: &mut Table, key: &str, text: &str) {
    let mut new = Value::from(text);
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    table.insert(key, Item::Value(new));
}

/// The entries of a list that may be written `[[key]]` (tables) or `key = [{…}]` (inline).
fn entries(item: Option<&Item>) -> Vec<&dyn toml_edit::TableLike> {
    match item {
        Some(Item::ArrayOfTables(tables)) => tables.iter().map(|t| t as &dyn toml_edit::TableLike).collect(),
        Some(item) => item
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_inline_table).map(|t| t as &dyn toml_edit::TableLike).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

fn strings(item: Option<&Item>) -> Vec<&str> {
    item.and_then(Item::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Whether some Data rule's glob takes `.egb` files.
pub fn has_data_rule(doc: &DocumentMut) -> bool {
    entries(doc.get("rules")).iter().any(|r| is_bundle_rule(r.get("type").and_then(Item::as_str), strings(r.get("globs")).into_iter()))
}

/// Whether a `rules` entry of this type and globs uploads `.egb` bundles as Data modules.
pub fn is_bundle_rule<'g>(kind: Option<&str>, mut globs: impl Iterator<Item = &'g str>) -> bool {
    kind == Some("Data") && globs.any(|g| g.ends_with(".egb"))
}

/// Whether some migration creates `class`.
fn lists_class(migrations: Option<&Item>, class: &str) -> bool {
    entries(migrations).iter().any(|m| ["new_sqlite_classes", "new_classes"].iter().any(|k| strings(m.get(k)).contains(&class)))
}

/// Whether some binding binds `class`.
fn binds_class(bindings: Option<&Item>, class: &str) -> bool {
    entries(bindings).iter().any(|b| b.get("class_name").and_then(Item::as_str) == Some(class))
}

/// Append an entry to the top-level list `key`, in the shape the file already uses.
fn push_entry(doc: &mut DocumentMut, key: &str, entry: InlineTable) -> Option<()> {
    let item = doc.entry(key).or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    push_item(item, entry)
}

fn push_item(item: &mut Item, entry: InlineTable) -> Option<()> {
    match item {
        Item::ArrayOfTables(tables) => {
            tables.push(entry.into_table());
            Some(())
        }
        item => {
            item.as_array_mut()?.push(entry);
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEEDS: Needs = Needs { main: "edge/index.mjs", env: None, limiter: true, stats: false, app: "Shop Front" };

    fn merged(text: Option<&str>, needs: &Needs) -> (toml::Table, String, Vec<String>) {
        let (out, changes) = merge(Path::new("wrangler.toml"), text, needs).unwrap_or_else(|e| panic!("{}", e.message));
        (toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}")), out, changes)
    }

    #[test]
    fn worker_names() {
        assert_eq!(worker_name("quotekit"), "quotekit-edge");
        assert_eq!(worker_name("Quote Kit!"), "quote-kit-edge");
        assert_eq!(worker_name("--"), "edgeguard");
    }

    #[test]
    fn data_rule_in_either_shape() {
        for text in ["rules = [{ type = \"Data\", globs = [\"**/*.egb\"] }]", "[[rules]]\ntype = \"Data\"\nglobs = [\"policy/*.egb\"]\n"] {
            assert!(has_data_rule(&text.parse().unwrap_or_default()), "{text}");
        }
        for text in ["", "rules = [{ type = \"Text\", globs = [\"**/*.egb\"] }]", "[[rules]]\ntype = \"Data\"\nglobs = [\"**/*.bin\"]\n"] {
            assert!(!has_data_rule(&text.parse().unwrap_or_default()), "{text}");
        }
    }

    #[test]
    fn inline_bindings_and_migrations_are_extended_in_their_shape() {
        let text = "name = \"x\"\nmain = \"old.mjs\" # the entry\ncompatibility_date = \"2025-10-01\"\nmigrations = [{ tag = \"v1\", new_sqlite_classes = [\"Room\"] }]\n\n[durable_objects]\nbindings = [{ name = \"ROOMS\", class_name = \"Room\" }]\n";
        let (doc, out, _) = merged(Some(text), &NEEDS);
        assert!(out.contains("main = \"edge/index.mjs\" # the entry"), "{out}");
        let bindings = doc["durable_objects"]["bindings"].as_array().cloned().unwrap_or_default();
        let classes: Vec<&str> = bindings.iter().filter_map(|b| b["class_name"].as_str()).collect();
        assert_eq!(classes, ["Room", "EdgeguardLimiter"]);
        assert_eq!(doc["migrations"].as_array().map(Vec::len), Some(2));
        assert_eq!(doc["compatibility_date"].as_str(), Some("2025-10-01"));
        // Merged twice: nothing more to do.
        let (again, changes) = merge(Path::new("wrangler.toml"), Some(&out), &NEEDS).unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!((again, changes), (out, Vec::<String>::new()));
    }

    #[test]
    fn another_environment_goes_under_env() {
        let staging = Needs { main: "edge-staging/index.mjs", env: Some("staging"), ..NEEDS };
        let prod = "name = \"x\"\nmain = \"edge/index.mjs\"\ncompatibility_date = \"2025-09-01\"\nrules = [{ type = \"Data\", globs = [\"**/*.egb\"] }]\n\n[[durable_objects.bindings]]\nname = \"EDGEGUARD_LIMITER\"\nclass_name = \"EdgeguardLimiter\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"EdgeguardLimiter\"]\n";
        let (doc, _, changes) = merged(Some(prod), &staging);
        assert_eq!(doc["main"].as_str(), Some("edge/index.mjs"), "production's main is left alone");
        assert_eq!(doc["env"]["staging"]["main"].as_str(), Some("edge-staging/index.mjs"));
        assert_eq!(doc["env"]["staging"]["durable_objects"]["bindings"][0]["class_name"].as_str(), Some("EdgeguardLimiter"), "bindings are not inherited");
        assert_eq!(doc["migrations"].as_array().map(Vec::len), Some(1), "migrations are shared");
        assert_eq!(changes, ["[env.staging] main = \"edge-staging/index.mjs\"", "[env.staging] the EDGEGUARD_LIMITER Durable Object binding"]);
    }

    #[test]
    fn a_new_file_and_the_snippet_say_the_same() {
        let (doc, _, changes) = merged(None, &NEEDS);
        assert_eq!(changes.first().map(String::as_str), Some("created"));
        let printed: toml::Table = toml::from_str(&format!("name = \"shop-front-edge\"\n{}", snippet(&NEEDS))).unwrap_or_default();
        assert_eq!(doc, printed);
        let staging = Needs { env: Some("staging"), ..NEEDS };
        let (doc, _, _) = merged(None, &staging);
        let printed: toml::Table = toml::from_str(&format!("name = \"shop-front-edge\"\n{}", snippet(&staging))).unwrap_or_default();
        assert_eq!(doc, printed);
    }

    #[test]
    fn shapes_it_cannot_edit_are_refused() {
        let staging = Needs { env: Some("staging"), ..NEEDS };
        for (text, needs) in [("rules = \"x\"", &NEEDS), ("migrations = 3", &NEEDS), ("durable_objects = 2", &NEEDS), ("env = 1", &staging), ("not toml =", &NEEDS)] {
            assert!(merge(Path::new("w.toml"), Some(text), needs).is_err(), "{text}");
        }
    }
}
