//! The worker's wrangler file (`wrangler.toml`, `wrangler.json`, `wrangler.jsonc`): entry, bundle
//! rule, vars, bindings and routes against the policy (D001–D019, D044–D046).

use core::ops::Range;
use std::path::Path;

use edgeguard_core::Bundle;
use edgeguard_core::bundle::Scope;
use edgeguard_core::observe::short_revision;
use toml::de::{DeTable, DeValue};

use super::{BUILT_ENTRY, Cx, IGNORED_OVERRIDE, Severity, Val, as_array, as_int, as_str, as_table, as_text, line, lookup, parse_jsonc};
use crate::{engine_section, output};
use crate::engine::{self, LIMITER_BINDING, LIMITER_CLASS};
use crate::import;

/// D001–D019, D046: the wrangler file against the policy; each check is a function below.
pub(super) fn check_wrangler(cx: &mut Cx<'_>, path: &Path, src: &str, env: Option<&str>) {
    let file = path.display().to_string();
    // Messages name the file as the user wrote it: wrangler.toml, wrangler.json or wrangler.jsonc.
    let name = path.file_name().map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let json = path.extension().is_some_and(|e| e == "json" || e == "jsonc");
    let parsed = if json { parse_jsonc(src) } else { DeTable::parse(src).map_err(|e| (e.message().trim().to_owned(), e.span())) };
    let doc = match parsed {
        Ok(d) => d,
        Err((why, span)) => {
            let at = span.and_then(|s| line(src, s));
            let format = if json { "JSON" } else { "TOML" };
            cx.push("D001", Severity::Error, &file, at, format!("{name} is not valid {format}: {why}"), "fix the syntax; `wrangler deploy` cannot read this file either");
            return;
        }
    };
    let root = doc.get_ref();
    let env_table = env.and_then(|n| lookup(root, &["env", n])).and_then(as_table);
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let w = Wrangler { file: &file, name: &name, json, src, dir, root, env_table };
    let (main_text, built) = check_main(cx, &w);
    check_data_rule(cx, &w, built);
    check_compatibility_date(cx, &w);
    check_vars(cx, &w);
    check_plain_secrets(cx, &w);
    check_durable_object(cx, &w, main_text.as_deref());
    check_rate_limit_bindings(cx, &w);
    // D011: every host of the policy is routed to this worker.
    check_routes(cx, &file, &name, src, w.pick("routes", true), w.pick("route", true));
    check_build_command(cx, &w);
}

/// The parts of the wrangler file the checks read.
struct Wrangler<'t, 'a> {
    /// The path as given, for findings.
    file: &'t str,
    /// The file name as the user wrote it (wrangler.toml, wrangler.json or wrangler.jsonc), for messages.
    name: &'t str,
    json: bool,
    src: &'t str,
    /// The directory `main` is relative to.
    dir: &'t Path,
    root: &'t DeTable<'a>,
    /// `[env.NAME]` of `--env`, when given and present.
    env_table: Option<&'t DeTable<'a>>,
}

impl<'t, 'a> Wrangler<'t, 'a> {
    /// A key of the environment, or of the top level when the environment inherits it: wrangler
    /// environments inherit some keys and not others (vars, durable_objects),
    /// <https://developers.cloudflare.com/workers/wrangler/environments/>
    fn pick(&self, key: &str, inheritable: bool) -> Option<&'t Val<'a>> {
        match self.env_table {
            Some(t) => t.get(key).or_else(|| if inheritable { self.root.get(key) } else { None }),
            None => self.root.get(key),
        }
    }
}


/// D002/D013/D044/D045: main is the entry of an `edgeguard build` directory, built, whose
/// bundle loads in the engine beside it and is this policy. Returns the entry's text, when it
/// exists, and whether the worker is built.
fn check_main(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>) -> (Option<String>, bool) {
    let Wrangler { file, name, src, dir, .. } = *w;
    let mut main_text: Option<String> = None;
    let mut built = false;
    match w.pick("main", true) {
        None => cx.push("D002", Severity::Warning, file, None, format!("{name} has no `main`: wrangler does not know which script to deploy"), format!("run `edgeguard build {} -o edge` and set `main = \"{BUILT_ENTRY}\"`", cx.policy_file)),
        Some(v) => {
            let main = as_str(v).unwrap_or_default();
            let at = line(src, v.span());
            let main_path = dir.join(main);
            let build_dir = main_path.parent().unwrap_or_else(|| Path::new(""));
            main_text = std::fs::read_to_string(&main_path).ok();
            let ours = build_dir.join(engine::MANIFEST).is_file();
            built = ours || main_text.is_some();
            let entry = main_path.file_name().is_some_and(|n| n == engine::ENTRY);
            if ours && entry {
                check_build_dir(cx, file, at, build_dir);
            } else if ours || main.ends_with("crates/worker/js/shell.mjs") {
                let why = if ours { "the shell of a build, without its policy: the entry is index.mjs" } else { "the shell's source, without the engine and a policy bundle next to it" };
                cx.push("D002", Severity::Warning, file, at, format!("`main = \"{main}\"` is {why}"), format!("set `main` to the index.mjs `edgeguard build {} -o DIR` writes", cx.policy_file));
            } else if main_text.is_none() {
                cx.push(
                    "D013",
                    Severity::Info,
                    file,
                    at,
                    format!("{} does not exist yet", main_path.display()),
                    format!("build it before `wrangler deploy`: edgeguard build {} -o {}", cx.policy_file, build_dir.display()),
                );
            } else {
                cx.push("D002", Severity::Warning, file, at, format!("`main = \"{main}\"` is not a worker `edgeguard build` wrote (no {} beside it)", engine::MANIFEST), format!("run `edgeguard build {} -o edge` and set `main = \"{BUILT_ENTRY}\"`", cx.policy_file));
            }
        }
    }
    (main_text, built)
}

/// D046: the rule that uploads the bundle as a Data module.
fn check_data_rule(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>, built: bool) {
    let Wrangler { file, name, json, root, .. } = *w;
    let data_rule = root.get("rules").and_then(as_array).unwrap_or_default().iter().filter_map(as_table).any(|r| {
        let globs = r.get("globs").and_then(as_array).unwrap_or_default();
        crate::wrangler::is_bundle_rule(r.get("type").and_then(as_str), globs.iter().filter_map(as_str))
    });
    if built && !data_rule {
        let merge = if json { "" } else { " (or run edgeguard build with --wrangler-toml)" };
        cx.push(
            "D046",
            Severity::Error,
            file,
            None,
            format!("{name} has no Data rule for `.egb` files: wrangler cannot bundle the worker's policy.egb and `wrangler deploy` fails"),
            format!("add `rules = [{{ type = \"Data\", globs = [\"{}\"], fallthrough = true }}]`{merge}", engine::DATA_RULE_GLOB),
        );
    }
}

/// D007: compatibility_date.
fn check_compatibility_date(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>) {
    let Wrangler { file, name, src, .. } = *w;
    match w.pick("compatibility_date", true) {
        None => cx.push("D007", Severity::Error, file, None, format!("{name} has no `compatibility_date`: `wrangler deploy` refuses to deploy without one"), "add `compatibility_date = \"2025-09-01\"` (the date the worker was tested with)"),
        Some(v) => {
            let ok = match v.get_ref() {
                DeValue::String(s) => is_date(s),
                DeValue::Datetime(_) => true,
                _ => false,
            };
            if !ok {
                cx.push("D007", Severity::Error, file, line(src, v.span()), "`compatibility_date` is not a date (YYYY-MM-DD)", "write it as `compatibility_date = \"2025-09-01\"`");
            }
        }
    }
}

/// D008/D009/D014/D015/D016: the vars that steer the deployed worker name what the policy has.
fn check_vars(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>) {
    let Wrangler { file, src, .. } = *w;
    let vars = w.pick("vars", false).and_then(as_table);
    let origin_names: Vec<&str> = cx.bundle.origins.iter().map(|o| o.name.as_str()).collect();
    let names_text = if origin_names.is_empty() { "none".to_owned() } else { origin_names.join(", ") };
    if let Some(v) = vars.and_then(|t| t.get("EDGE_ACTIVE_ORIGIN")) {
        let value = as_text(v).unwrap_or_default();
        let name = value.trim();
        if !name.is_empty() && !origin_names.contains(&name) {
            cx.push(
                "D008",
                Severity::Error,
                file,
                line(src, v.span()),
                format!("EDGE_ACTIVE_ORIGIN = \"{name}\" names no origin of the policy ({names_text}): {IGNORED_OVERRIDE}"),
                format!("set it to one of {names_text}, or \"\" to use [deploy] active"),
            );
        }
    }
    if let Some(v) = vars.and_then(|t| t.get("EDGE_CANARY_PERCENT")) {
        let value = as_text(v).unwrap_or_default();
        let text = value.trim();
        if !text.is_empty() {
            match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => {
                    if p > 0.0 && cx.bundle.deploy.canary.is_none() {
                        cx.push(
                            "D016",
                            Severity::Warning,
                            file,
                            line(src, v.span()),
                            format!("EDGE_CANARY_PERCENT = \"{text}\" has no effect: the policy has no [deploy] canary"),
                            "add `canary = { origin = \"green\", percent = 0 }` to [deploy], or clear the var",
                        );
                    }
                }
                _ => cx.push(
                    "D009",
                    Severity::Error,
                    file,
                    line(src, v.span()),
                    format!("EDGE_CANARY_PERCENT = \"{text}\" is not a number from 0 to 100: {IGNORED_OVERRIDE}"),
                    "set a share from 0 to 100 (e.g. \"5\"), or \"\" to use [deploy] canary.percent",
                ),
            }
        }
    }
    if let Some(v) = vars.and_then(|t| t.get("EDGE_SHADOW")) {
        let value = as_text(v).unwrap_or_default();
        if matches!(value.trim(), "1" | "true" | "yes" | "on") {
            cx.push("D014", Severity::Warning, file, line(src, v.span()), "EDGE_SHADOW is on: the edge logs what it would refuse and refuses nothing", "set EDGE_SHADOW = \"\" once the shadow run is over");
        }
    }
    if let Some(v) = vars.and_then(|t| t.get("EDGE_ORIGINS")) {
        let value = as_text(v).unwrap_or_default();
        let at = line(src, v.span());
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, url)) = pair.split_once('=').filter(|(n, _)| !n.trim().is_empty()) else {
                cx.push("D015", Severity::Warning, file, at, format!("EDGE_ORIGINS entry `{pair}` is not `name=url`: the worker ignores it"), "write entries as name=https://…, separated by commas");
                continue;
            };
            let (name, url) = (name.trim(), url.trim());
            if name != "*" && !origin_names.contains(&name) {
                cx.push("D015", Severity::Warning, file, at, format!("EDGE_ORIGINS names `{name}`, which is not an origin of the policy ({names_text}): the worker ignores it"), format!("use one of {names_text}, or `*` for all"));
            }
            if !url.to_ascii_lowercase().starts_with("https://") {
                cx.push("D015", Severity::Warning, file, at, format!("EDGE_ORIGINS sends `{name}` to `{url}`, which is not https"), "use the origin's https:// URL");
            }
            cx.origin_overrides.push(url.trim_end_matches('/').to_ascii_lowercase());
        }
    }
}

/// D010: secrets in plain text, in any environment's vars.
fn check_plain_secrets(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>) {
    let Wrangler { file, name, src, root, .. } = *w;
    let mut var_tables: Vec<(String, &DeTable<'_>)> = Vec::new();
    if let Some(t) = root.get("vars").and_then(as_table) {
        var_tables.push(("[vars]".to_owned(), t));
    }
    if let Some(envs) = root.get("env").and_then(as_table) {
        for (env_name, e) in envs.iter() {
            if let Some(t) = as_table(e).and_then(|e| e.get("vars")).and_then(as_table) {
                var_tables.push((format!("[env.{}.vars]", env_name.get_ref()), t));
            }
        }
    }
    for (where_, t) in var_tables {
        for (k, _) in t.iter() {
            let var = k.get_ref();
            let (severity, what, public) = match secret_var(var) {
                Some(Secret::Known(what)) => (Severity::Error, format!("{what} is then in plain text"), ""),
                Some(Secret::Named(suffix)) => (Severity::Warning, format!("its name ends in {suffix}, like a secret's, and a var is in plain text"), "; a value that is public (a publishable key) can stay"),
                None => continue,
            };
            cx.push(
                "D010",
                severity,
                file,
                line(src, k.span()),
                format!("{var} is in {where_}: {what} in the repository and the dashboard"),
                format!("remove it from {name} and run `wrangler secret put {var}` (rotate it if it was committed){public}"),
            );
        }
    }
}

/// D003–D006, D017: the Durable Object a global limit needs.
fn check_durable_object(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>, main_text: Option<&str>) {
    let Wrangler { file, name, src, root, .. } = *w;
    let global: Vec<&str> = cx.bundle.limits.iter().filter(|l| matches!(l.scope, Scope::Global)).map(|l| l.name.as_str()).collect();
    let bindings: Vec<(Option<&str>, Option<&str>, Option<usize>)> = w.pick("durable_objects", false)
        .and_then(as_table)
        .and_then(|t| t.get("bindings"))
        .and_then(as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| {
            let t = as_table(b)?;
            Some((t.get("name").and_then(as_str), t.get("class_name").and_then(as_str), line(src, b.span())))
        })
        .collect();
    let migrations = root.get("migrations").and_then(as_array).unwrap_or_default();
    let migrated = |key: &str| {
        migrations.iter().filter_map(as_table).any(|m| {
            m.get(key).and_then(as_array).is_some_and(|list| list.iter().any(|c| as_str(c) == Some(LIMITER_CLASS)))
        })
    };
    let class_bound = bindings.iter().find(|(_, class, _)| *class == Some(LIMITER_CLASS));
    if !global.is_empty() {
        let scope_line = cx.policy_doc.and_then(|d| first_global_scope(d)).map(|s| import::line_of(cx.policy_src, s.start));
        let at_policy = scope_line.map_or_else(|| cx.policy_file.to_owned(), |l| format!("{}:{l}", cx.policy_file));
        let limits = global.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let correct = bindings.iter().any(|(n, c, _)| *n == Some(LIMITER_BINDING) && *c == Some(LIMITER_CLASS));
        if !correct {
            let (msg, at) = match (class_bound, bindings.iter().find(|(n, _, _)| *n == Some(LIMITER_BINDING))) {
                (Some((name, _, at)), _) => (format!("the {LIMITER_CLASS} binding is named `{}`; the worker looks for `{LIMITER_BINDING}`", name.unwrap_or("")), *at),
                (None, Some((_, class, at))) => (format!("binding `{LIMITER_BINDING}` is bound to class `{}`, not `{LIMITER_CLASS}`", class.unwrap_or("")), *at),
                (None, None) => (format!("global limit(s) {limits} ({at_policy}) need a Durable Object binding `{LIMITER_BINDING}` of class `{LIMITER_CLASS}`, and {name} has none"), None),
            };
            cx.push(
                "D003",
                Severity::Error,
                file,
                at,
                msg,
                format!("add [[durable_objects.bindings]] with name = \"{LIMITER_BINDING}\" and class_name = \"{LIMITER_CLASS}\""),
            );
        }
        let sqlite = migrated("new_sqlite_classes");
        if !sqlite && migrated("new_classes") {
            cx.push(
                "D005",
                Severity::Warning,
                file,
                None,
                format!("{LIMITER_CLASS} is created with `new_classes` (key-value storage backend) instead of `new_sqlite_classes`"),
                "for a new deployment, list it in `new_sqlite_classes` (a class's storage backend cannot be changed once deployed)",
            );
        } else if !sqlite {
            cx.push(
                "D004",
                Severity::Error,
                file,
                None,
                format!("global limit(s) {limits} ({at_policy}) need the {LIMITER_CLASS} class created by a migration, and no [[migrations]] entry lists it in `new_sqlite_classes`"),
                format!("add [[migrations]] with tag = \"v1\" and new_sqlite_classes = [\"{LIMITER_CLASS}\"]"),
            );
        }
    } else if let Some((_, _, at)) = class_bound {
        cx.push(
            "D017",
            Severity::Info,
            file,
            *at,
            format!("an {LIMITER_CLASS} Durable Object is bound, but the policy has no `scope = \"global\"` limit"),
            "remove the binding, or keep it for a global limit to come",
        );
    }
    if let (Some((_, _, at)), Some(text)) = (class_bound, &main_text)
        && !text.contains(LIMITER_CLASS)
    {
        cx.push(
            "D006",
            Severity::Error,
            file,
            *at,
            format!("{name} binds the Durable Object class {LIMITER_CLASS}, but `main` does not export it: `wrangler deploy` fails"),
            "build the worker with an edgeguard that has the global limiter, or remove the binding and keep limits `scope = \"local\"`",
        );
    }
}

/// D018/D019: the Workers Rate Limiting binding a `scope = "cloudflare"` limit needs.
fn check_rate_limit_bindings(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>) {
    let Wrangler { file, name, src, .. } = *w;
    let mut rate_bindings: Vec<RateBinding<'_>> = Vec::new();
    let unsafe_bindings = w.pick("unsafe", false).and_then(as_table).and_then(|t| t.get("bindings")).and_then(as_array).unwrap_or_default();
    let ratelimits = w.pick("ratelimits", false).and_then(as_array).unwrap_or_default();
    for (b, needs_type) in ratelimits.iter().map(|b| (b, false)).chain(unsafe_bindings.iter().map(|b| (b, true))) {
        let Some(t) = as_table(b) else { continue };
        if needs_type && t.get("type").and_then(as_str) != Some("ratelimit") {
            continue;
        }
        let Some(name) = t.get("name").and_then(as_str) else { continue };
        let simple = t.get("simple").and_then(as_table);
        let limit = simple.and_then(|s| s.get("limit")).and_then(as_int);
        let period = simple.and_then(|s| s.get("period")).and_then(as_int);
        rate_bindings.push((name, limit, period, line(src, b.span())));
    }
    for l in cx.bundle.limits.iter().filter(|l| matches!(l.scope, Scope::Cloudflare)) {
        let want = rate_limit_binding(&l.name);
        match rate_bindings.iter().find(|(n, _, _, _)| *n == want) {
            None => cx.push(
                "D018",
                Severity::Error,
                file,
                None,
                format!("limit `{}` has scope = \"cloudflare\" but {name} has no rate-limit binding `{want}`: the worker cannot ask it, and the limit's on_error decides every request", l.name),
                format!("add [[ratelimits]] with name = \"{want}\", a namespace_id and simple = {{ limit = {}, period = {} }}", l.count, l.window_secs),
            ),
            Some((_, limit, period, at)) => {
                if *limit != i64::try_from(l.count).ok() || *period != i64::try_from(l.window_secs).ok() {
                    let shown = |v: &Option<i64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
                    cx.push(
                        "D019",
                        Severity::Warning,
                        file,
                        *at,
                        format!("binding `{want}` counts {} per {} s but limit `{}` says {} per {} s: Cloudflare enforces the binding's numbers", shown(limit), shown(period), l.name, l.count, l.window_secs),
                        format!("set simple = {{ limit = {}, period = {} }}", l.count, l.window_secs),
                    );
                }
            }
        }
    }
}

/// D012: a `[build]` command that does not build the policy bundle.
fn check_build_command(cx: &mut Cx<'_>, w: &Wrangler<'_, '_>) {
    let Wrangler { file, src, .. } = *w;
    if let Some(v) = w.pick("build", true).and_then(as_table).and_then(|t| t.get("command")) {
        let command = as_str(v).unwrap_or_default();
        if !command.contains("edgeguard build") {
            cx.push(
                "D012",
                Severity::Info,
                file,
                line(src, v.span()),
                format!("`wrangler deploy` runs the [build] command `{command}`, which does not build the policy bundle: the worker deploys with whatever policy its directory was last built with"),
                format!("make the command `npx edgeguard build {} -o edge`, or drop it and build before deploying", cx.policy_file),
            );
        }
    }
}

/// D044/D045: a directory `edgeguard build` wrote — its bundle must load in the engine beside
/// it (else every request is answered 503 `edge-misconfigured`), and be this policy's.
pub(super) fn check_build_dir(cx: &mut Cx<'_>, file: &str, at: Option<usize>, dir: &Path) {
    let rebuild = format!("rebuild it: edgeguard build {} -o {}", cx.policy_file, dir.display());
    // Every module the entry imports must be there, or wrangler cannot bundle the worker.
    let entry = std::fs::read_to_string(dir.join(engine::ENTRY)).unwrap_or_default();
    let wanted = [engine::ENTRY, engine::SHELL, engine::GLUE, engine::WASM, engine::POLICY]
        .into_iter()
        .chain(entry.contains(&format!("./{}", engine::SHADOW)).then_some(engine::SHADOW));
    let missing: Vec<&str> = wanted.filter(|f| !dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        let msg = format!("{} is not a complete edgeguard build (no {}): the worker cannot load a policy", dir.display(), missing.join(", "));
        cx.push("D044", Severity::Error, file, at, msg, rebuild);
        return;
    }
    let wasm = std::fs::read(dir.join(engine::WASM));
    let bundle = std::fs::read(dir.join(engine::POLICY));
    let (wasm, bundle) = match (wasm, bundle) {
        (Ok(w), Ok(b)) => (w, b),
        (Err(e), _) | (_, Err(e)) => {
            let msg = format!("{} is not a complete edgeguard build ({}): the worker cannot load a policy", dir.display(), output::without_os_codes(&e.to_string()));
            cx.push("D044", Severity::Error, file, at, msg, rebuild);
            return;
        }
    };
    let Some(section) = engine_section::read(&wasm) else {
        let msg = format!("{} is not an edgeguard engine", dir.join(engine::WASM).display());
        cx.push("D044", Severity::Error, file, at, msg, rebuild);
        return;
    };
    let refused = |why: String| format!("{}: {why}; deployed, the edge answers every request 503 edge-misconfigured", dir.join(engine::POLICY).display());
    let loaded = match edgeguard_core::bundle::read_header(&bundle) {
        Err(e) => Err(e.to_string()),
        Ok(h) if h.format != section.format => Err(format!(
            "bundle format {} cannot be read by the engine beside it (edgeguard {}, format {})",
            h.format, section.version, section.format
        )),
        // The engine reads the format this CLI writes: load it exactly as the engine will.
        Ok(_) if section.format == edgeguard_core::FORMAT_VERSION => Bundle::from_bytes(&bundle).map_err(|e| e.to_string()),
        Ok(_) => return, // another edgeguard's engine and bundle that agree: its own loader decides
    };
    match loaded {
        Err(why) => cx.push("D044", Severity::Error, file, at, refused(why), rebuild),
        Ok(built) if built.revision != cx.bundle.revision => {
            let msg = format!(
                "{} holds revision {}… ({}, {}), not the revision {}… of {} for {}",
                dir.display(),
                short_revision(&built),
                built.app.name,
                built.app.environment,
                short_revision(cx.bundle),
                cx.policy_file,
                cx.bundle.app.environment
            );
            // Another environment's policy would go live (staging's routes in production): an
            // error. The same environment at another revision is a build to refresh.
            let severity = if built.app.environment == cx.bundle.app.environment { Severity::Warning } else { Severity::Error };
            cx.push("D045", severity, file, at, msg, rebuild);
        }
        Ok(_) => {}
    }
}

/// The binding the worker asks for a `scope = "cloudflare"` limit: `EDGEGUARD_RL_` and the
/// limit's name upper-cased, other characters as `_` (as crates/worker/js/shell.mjs does).
pub fn rate_limit_binding(limit: &str) -> String {
    let name: String = limit.chars().map(|c| c.to_ascii_uppercase()).map(|c| if c.is_ascii_uppercase() || c.is_ascii_digit() { c } else { '_' }).collect();
    format!("EDGEGUARD_RL_{name}")
}

/// Why a worker var should be a secret.
enum Secret {
    /// A secret the worker reads (crates/worker/js/shell.mjs), and what it is.
    Known(&'static str),
    /// A name that ends like a secret's (`_KEY`, …): the suffix.
    Named(&'static str),
}

/// Whether a var named `var` holds a secret. edgeguard's own levers (`EDGE_ACTIVE_ORIGIN`,
/// `EDGE_CANARY_PERCENT`, `EDGE_SHADOW`, `EDGE_ORIGINS`, `EDGE_ORIGIN_AUTH_HEADER`,
/// `EDGE_POSTHOG_HOST`) are not, and none ends like a secret's name.
fn secret_var(var: &str) -> Option<Secret> {
    match var {
        "EDGE_ORIGIN_AUTH" => Some(Secret::Known("the origin's shared secret")),
        "POSTHOG_KEY" => Some(Secret::Known("the PostHog project key")),
        _ => {
            let upper = var.to_ascii_uppercase();
            ["_KEY", "_SECRET", "_TOKEN", "_PASSWORD", "_AUTH"].into_iter().find(|s| upper.ends_with(s)).map(Secret::Named)
        }
    }
}

/// A Workers Rate Limiting binding: name, `simple.limit`, `simple.period`, line.
type RateBinding<'a> = (&'a str, Option<i64>, Option<i64>, Option<usize>);

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// Span of the first `scope = "global"` in the policy (a named, inline or overlay limit).
fn first_global_scope(table: &DeTable<'_>) -> Option<Range<usize>> {
    for (k, v) in table.iter() {
        if k.get_ref() == "scope" && as_str(v) == Some("global") {
            return Some(v.span());
        }
        let found = match v.get_ref() {
            DeValue::Table(t) => first_global_scope(t),
            DeValue::Array(a) => a.iter().filter_map(as_table).find_map(first_global_scope),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routed {
    Fully,
    Partly,
    No,
}

/// Whether a wrangler route pattern (`host/path*`, or a custom domain) takes every request for
/// `host`.
fn route_covers(pattern: &str, custom_domain: bool, host: &str) -> Routed {
    let p = pattern.trim();
    let p = p.strip_prefix("https://").or_else(|| p.strip_prefix("http://")).unwrap_or(p);
    let (host_pat, path) = p.split_once('/').map_or((p, ""), |(h, rest)| (h, rest));
    let host_pat = host_pat.split(':').next().unwrap_or(host_pat).to_ascii_lowercase();
    let host_ok = if let Some(suffix) = host_pat.strip_prefix('*') { host.ends_with(suffix) } else { host_pat == host };
    if !host_ok {
        return Routed::No;
    }
    if (custom_domain && path.is_empty()) || path == "*" {
        Routed::Fully
    } else {
        Routed::Partly
    }
}

fn check_routes(cx: &mut Cx<'_>, file: &str, name: &str, src: &str, routes: Option<&Val<'_>>, route: Option<&Val<'_>>) {
    let hosts = cx.bundle.app.hosts.clone();
    if hosts.is_empty() {
        return;
    }
    let mut patterns: Vec<(String, bool)> = Vec::new();
    let mut add = |v: &Val<'_>| match v.get_ref() {
        DeValue::String(s) => patterns.push((s.to_string(), false)),
        DeValue::Table(t) => {
            if let Some(p) = t.get("pattern").and_then(as_str) {
                let custom = t.get("custom_domain").and_then(|c| c.get_ref().as_bool()).unwrap_or(false);
                patterns.push((p.to_owned(), custom));
            }
        }
        _ => {}
    };
    let at = routes.or(route).and_then(|v| line(src, v.span()));
    if let Some(list) = routes.and_then(as_array) {
        list.iter().for_each(&mut add);
    }
    if let Some(r) = route {
        add(r);
    }
    for host in &hosts {
        let best = patterns.iter().map(|(p, c)| (route_covers(p, *c, host), p)).min_by_key(|(r, _)| match r {
            Routed::Fully => 0,
            Routed::Partly => 1,
            Routed::No => 2,
        });
        match best {
            Some((Routed::Fully, _)) => {}
            Some((Routed::Partly, p)) => cx.push(
                "D011",
                Severity::Warning,
                file,
                at,
                format!("only `{p}` of {host} (in app.hosts) is routed to the worker: other paths reach the origin without the edge, or not at all"),
                format!("route the whole host: {{ pattern = \"{host}\", custom_domain = true }} or \"{host}/*\""),
            ),
            _ => cx.push(
                "D011",
                Severity::Warning,
                file,
                at,
                format!("{host} is in the policy's app.hosts but no route or custom domain in {name} sends it to the worker"),
                format!("add {{ pattern = \"{host}\", custom_domain = true }} to `routes` (or remove the host from app.hosts)"),
            ),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrangler_route_patterns() {
        assert_eq!(route_covers("lawnquote.online", true, "lawnquote.online"), Routed::Fully);
        assert_eq!(route_covers("lawnquote.online/*", false, "lawnquote.online"), Routed::Fully);
        assert_eq!(route_covers("*lawnquote.online/*", false, "www.lawnquote.online"), Routed::Fully);
        assert_eq!(route_covers("*.lawnquote.online/*", false, "lawnquote.online"), Routed::No);
        assert_eq!(route_covers("lawnquote.online/api/*", false, "lawnquote.online"), Routed::Partly);
        assert_eq!(route_covers("lawnquote.online", false, "lawnquote.online"), Routed::Partly);
        assert_eq!(route_covers("https://example.com/*", false, "lawnquote.online"), Routed::No);
    }

    #[test]
    fn binding_names() {
        assert_eq!(rate_limit_binding("api"), "EDGEGUARD_RL_API");
        assert_eq!(rate_limit_binding("quote-email"), "EDGEGUARD_RL_QUOTE_EMAIL");
        assert_eq!(rate_limit_binding("/api/admin/metrics"), "EDGEGUARD_RL__API_ADMIN_METRICS");
    }

    #[test]
    fn dates() {
        assert!(is_date("2025-09-01"));
        assert!(!is_date("2025-9-1"));
        assert!(!is_date("yesterday!"));
    }
}
