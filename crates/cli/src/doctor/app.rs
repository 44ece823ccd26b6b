//! The app itself: its routes against the policy's (drift), and its Next.js version.

use std::path::Path;

use edgeguard_core::bundle::method;

use super::{Cx, Severity, as_str, line, lookup, parse_jsonc};
use crate::Failure;
use crate::import::{self, Coverage, MethodSync, Methods};

pub(super) fn check_app(cx: &mut Cx<'_>, dir: &Path, scan: &import::AppScan) -> Result<(), Failure> {
    check_next_version(cx, dir);
    let routes = import::policy_routes(cx.policy_src);
    let analysis = import::analyse(scan, &routes, cx.bundle)?;
    let policy_file = cx.policy_file;
    let fix_import = format!("run `edgeguard import next {} --policy {policy_file} --write`", dir.display());
    for (app, cov) in scan.routes.iter().zip(&analysis.coverage) {
        let file = app.file.display().to_string();
        let methods = match &app.methods {
            Methods::Known(m) => import::methods_text(*m),
            Methods::Unknown(_) => "methods unknown".to_owned(),
        };
        match cov {
            Coverage::Uncovered { by } => {
                let rule = by.and_then(|i| routes.get(i));
                let falls = rule.map_or_else(|| "[defaults]".to_owned(), |r| format!("the catch-all `{}`", r.path));
                let rule_methods = match rule {
                    Some(r) => {
                        let canonical = import::canonical(&r.segs);
                        cx.bundle.routes.iter().find(|b| b.pattern.as_deref() == Some(canonical.as_str())).map_or(0, |b| b.methods)
                    }
                    None => cx.bundle.defaults.methods,
                };
                let extra = match &app.methods {
                    Methods::Known(m) => rule_methods & !(import::new_route_methods(*m) | method::OPTIONS),
                    Methods::Unknown(_) => 0,
                };
                let consequence = if extra == 0 {
                    "the policy does not know it".to_owned()
                } else {
                    format!("which also lets {} through", import::methods_text(extra))
                };
                cx.push(
                    "D040",
                    Severity::Warning,
                    &file,
                    Some(app.line),
                    format!("the app serves `{}` ({methods}) but the policy has no route for it: it falls to {falls}, {consequence}", app.pattern),
                    fix_import.clone(),
                );
            }
            Coverage::Exact { route, sync: MethodSync::Changed { from, to } } => {
                let Some(r) = routes.get(*route) else { continue };
                let at = r.methods.map_or(r.line, |(_, l)| l);
                let quoted = import::method_names(*to).iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ");
                cx.push(
                    "D042",
                    Severity::Warning,
                    policy_file,
                    Some(at),
                    format!("route `{}` allows {} but {file} exports {methods}", r.path, import::methods_text(*from)),
                    format!("set methods = [{quoted}] (or {fix_import})"),
                );
            }
            _ => {}
        }
        if let Methods::Unknown(why) = &app.methods {
            cx.push("D043", Severity::Info, &file, Some(app.line), format!("the methods of `{}` cannot be read: {why}", app.pattern), "list its methods in the policy route by hand");
        }
    }
    for i in &analysis.stale {
        let Some(r) = routes.get(*i) else { continue };
        cx.push(
            "D041",
            Severity::Warning,
            policy_file,
            Some(r.line),
            format!("route `{}` matches nothing {} serves (no route handler, page, public file or metadata file)", r.path, dir.display()),
            "remove the route if the endpoint is gone; check that --app is the app's root",
        );
    }
    for (file, line, msg) in &scan.notes {
        cx.push("D043", Severity::Info, &file.display().to_string(), Some(*line), msg.clone(), "nothing to do unless the route should exist");
    }
    Ok(())
}

// ------------------------------------------------------------------ the app's Next.js version

/// The Next.js versions whose middleware a request skips by sending `x-middleware-subrequest`
/// (CVE-2025-29927, GHSA-f82v-jwr5-mffw), as an npm range.
const CVE_2025_29927: &str = ">=11.1.4 <12.3.5 || >=13.0.0 <13.5.9 || >=14.0.0 <14.2.25 || >=15.0.0 <15.2.3";

/// Where the version of `next` the app runs is written, most installed first: the package
/// itself, the lock file, and the range package.json asks for.
const NEXT_VERSION_AT: [(&str, &[&str]); 4] = [
    ("node_modules/next/package.json", &["version"]),
    ("package-lock.json", &["packages", "node_modules/next", "version"]),
    ("package.json", &["dependencies", "next"]),
    ("package.json", &["devDependencies", "next"]),
];

/// D047: a Next.js version affected by CVE-2025-29927. An installed version (node_modules, the
/// lock file) is judged when there is one; otherwise the lowest version package.json's range
/// allows.
fn check_next_version(cx: &mut Cx<'_>, dir: &Path) {
    let Ok(affected) = nodejs_semver::Range::parse(CVE_2025_29927) else { return };
    let mut installed = false;
    for (rel, keys) in NEXT_VERSION_AT {
        let declared = rel == "package.json";
        if declared && installed {
            return;
        }
        let path = dir.join(rel);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(doc) = parse_jsonc(&text) else { continue };
        let Some(v) = lookup(doc.get_ref(), keys) else { continue };
        let spec = as_str(v).unwrap_or_default().trim();
        let (version, what) = if declared {
            // A tag (`latest`), an alias or a URL is no range: nothing to judge.
            let Some(lowest) = nodejs_semver::Range::parse(spec).ok().and_then(|r| r.min_version()) else { continue };
            let section = keys.first().copied().unwrap_or_default();
            let what = format!("{rel} asks for next \"{spec}\" ({section}), and no installed version was found: the lowest version it allows, {lowest}, is");
            (lowest, what)
        } else {
            let Ok(version) = nodejs_semver::Version::parse(spec) else { continue };
            installed = true;
            (version, format!("next {spec} is installed ({rel}) and is"))
        };
        if version.satisfies_with_prerelease(&affected, true) {
            cx.push(
                "D047",
                Severity::Error,
                &path.display().to_string(),
                line(&text, v.span()),
                format!("{what} affected by CVE-2025-29927: a request with an `x-middleware-subrequest` header skips the app's middleware and the checks it makes"),
                "upgrade next to 12.3.5 / 13.5.9 / 14.2.25 / 15.2.3 or later; the edge strips x-middleware-subrequest, but a request that bypasses the edge (the *.fly.dev address) reaches the middleware with whatever it carries",
            );
            return;
        }
    }
}

