//! The app's `fly.toml` against the policy: the port, https, idle machines, health checks, the
//! release command and the app's origin URL (D020–D036).

use edgeguard_core::bundle::{Route, method};
use edgeguard_core::routes::Match;
use toml::de::{DeTable, DeValue};

use super::{Cx, Severity, Val, as_int, as_str, as_table, as_text, go_duration_ms, line, lookup, ms_text, tables};
use crate::import;

/// One HTTP health check of fly.toml.
struct Check {
    /// `[[http_service.checks]]`, `[checks.name]`, …
    label: String,
    path: Option<(String, Option<usize>)>,
    method: String,
    timeout: Option<(u64, Option<usize>)>,
}

/// D020–D036: fly.toml against the policy; each check is a function below.
pub(super) fn check_fly(cx: &mut Cx<'_>, file: &str, src: &str) {
    let doc = match DeTable::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let at = e.span().and_then(|s| line(src, s));
            cx.push("D020", Severity::Error, file, at, format!("fly.toml is not valid TOML: {}", e.message().trim()), "fix the syntax; `fly deploy` cannot read this file either");
            return;
        }
    };
    let root = doc.get_ref();
    let http = root.get("http_service");
    let http_t = http.and_then(as_table);
    let (_, services) = tables("services", root.get("services"));
    let fly = Fly { file, src, root, http, http_t, services };
    check_port(cx, &fly);
    check_force_https(cx, &fly);
    check_auto_stop(cx, &fly);
    let checks = health_checks(&fly);
    check_health(cx, &fly, &checks);
    check_release_command(cx, &fly);
    check_app_origin(cx, &fly);
}

/// The parts of fly.toml the checks read.
struct Fly<'t, 'a> {
    file: &'t str,
    src: &'t str,
    root: &'t DeTable<'a>,
    http: Option<&'t Val<'a>>,
    http_t: Option<&'t DeTable<'a>>,
    services: Vec<&'t DeTable<'a>>,
}

/// D021/D036: the port Fly's proxy forwards to.
fn check_port(cx: &mut Cx<'_>, fly: &Fly<'_, '_>) {
    let Fly { file, src, root, http, http_t, ref services } = *fly;
    let port = http_t.and_then(|t| t.get("internal_port")).and_then(as_int).or_else(|| services.iter().find_map(|s| s.get("internal_port").and_then(as_int)));
    match (http_t, port) {
        (_, Some(_)) => {}
        (Some(_), None) => cx.push("D021", Severity::Error, file, http.and_then(|v| line(src, v.span())), "[http_service] has no `internal_port`: Fly's proxy does not know where the app listens", "add `internal_port = 3000` (the port `next start` listens on)"),
        (None, None) => cx.push("D021", Severity::Error, file, None, "fly.toml has no [http_service] (or [[services]]) with an `internal_port`: the app is not reachable over HTTP, so the edge has no origin", "add [http_service] with internal_port = 3000 and force_https = true"),
    }
    if let (Some(port), Some(v)) = (port, lookup(root, &["env", "PORT"])) {
        let env_port = as_text(v).unwrap_or_default();
        if env_port.trim() != port.to_string() {
            cx.push("D036", Severity::Warning, file, line(src, v.span()), format!("[env] PORT = {} but internal_port = {port}: the app listens on one port and Fly forwards to the other (502 at the edge)", env_port.trim()), "make them the same port");
        }
    }
}

/// D022: force_https.
fn check_force_https(cx: &mut Cx<'_>, fly: &Fly<'_, '_>) {
    let Fly { file, src, http_t, .. } = *fly;
    if let Some(t) = http_t {
        let force = t.get("force_https");
        let on = force.and_then(|v| v.get_ref().as_bool()).unwrap_or(false);
        let at = force.and_then(|v| line(src, v.span()));
        let (msg, fix) = if on {
            ("force_https = true: Fly also redirects http to https; the edge already does for its own traffic, so this only affects requests straight to the Fly app", "nothing to do; either setting is fine behind the edge")
        } else {
            ("force_https is off: requests straight to the Fly app over http are not redirected (the edge redirects its own traffic)", "set force_https = true so the app's own hostname is https-only too")
        };
        cx.push("D022", Severity::Info, file, at, msg, fix);
    }
}

/// D032: machines that stop when idle, while the edge expects probes answered quickly.
fn check_auto_stop(cx: &mut Cx<'_>, fly: &Fly<'_, '_>) {
    let Fly { file, src, http_t, .. } = *fly;
    let stop_cfg = http_t.map(|t| (t.get("auto_stop_machines"), t.get("min_machines_running")));
    if let (Some((Some(stop), min)), Some(health)) = (stop_cfg, cx.bundle.health.as_ref()) {
        let stops = match stop.get_ref() {
            DeValue::Boolean(b) => *b,
            DeValue::String(s) => matches!(s.as_ref(), "stop" | "suspend"),
            _ => false,
        };
        let min_running = min.and_then(as_int).unwrap_or(0);
        if stops && min_running <= 0 {
            let timeout = ms_text(health.timeout_ms);
            let at_policy = cx.policy_at(&["health", "timeout"]);
            cx.push(
                "D032",
                Severity::Warning,
                file,
                line(src, stop.span()),
                format!("auto_stop_machines stops every Machine when idle (min_machines_running = {min_running}), but the edge's health probe expects an answer within {timeout} ({at_policy}): after a quiet spell the first probe and the first visitors wait for a cold start"),
                "set min_machines_running = 1 (or auto_stop_machines = \"suspend\" for faster resumes)",
            );
        }
    }
}

/// The HTTP health checks fly.toml defines, in each of its three forms.
fn health_checks(fly: &Fly<'_, '_>) -> Vec<Check> {
    let Fly { src, root, http_t, ref services, .. } = *fly;
    let mut checks: Vec<Check> = Vec::new();
    let read_check = |label: String, t: &DeTable<'_>| Check {
        label,
        path: t.get("path").and_then(|v| Some((as_str(v)?.to_owned(), line(src, v.span())))),
        method: t.get("method").and_then(as_str).unwrap_or("GET").to_ascii_uppercase(),
        timeout: t.get("timeout").and_then(|v| Some((go_duration_ms(as_str(v)?)?, line(src, v.span())))),
    };
    let (label, list) = tables("http_service.checks", http_t.and_then(|t| t.get("checks")));
    checks.extend(list.into_iter().map(|t| read_check(label.clone(), t)));
    for s in services {
        let (label, list) = tables("services.http_checks", s.get("http_checks"));
        checks.extend(list.into_iter().map(|t| read_check(label.clone(), t)));
    }
    if let Some(named) = root.get("checks").and_then(as_table) {
        for (name, v) in named.iter() {
            if let Some(t) = as_table(v).filter(|t| t.get("type").and_then(as_str).is_none_or(|ty| ty == "http")) {
                checks.push(read_check(format!("[checks.{}]", name.get_ref()), t));
            }
        }
    }
    checks
}

/// D035, D028–D030: there is a health check, and it probes what the edge probes, as patiently.
fn check_health(cx: &mut Cx<'_>, fly: &Fly<'_, '_>, checks: &[Check]) {
    let Fly { file, http, src, .. } = *fly;
    if checks.is_empty() {
        cx.push(
            "D035",
            Severity::Warning,
            file,
            http.and_then(|v| line(src, v.span())),
            "fly.toml has no HTTP health check: Fly keeps routing to a Machine whose app has hung",
            "add [[http_service.checks]] with path = \"/api/health\", interval = \"15s\", timeout = \"5s\"",
        );
    }
    for c in checks {
        if let Some((path, at)) = &c.path {
            check_health_path(cx, file, *at, &c.label, path, &c.method);
        }
    }
    if let Some(h) = cx.bundle.health.clone() {
        let paths: Vec<&Check> = checks.iter().filter(|c| c.path.as_ref().is_some_and(|(p, _)| strip_query(p) == h.probe_path)).collect();
        if paths.is_empty()
            && let Some(first) = checks.iter().find_map(|c| c.path.as_ref())
        {
            cx.push(
                "D028",
                Severity::Info,
                file,
                first.1,
                format!("Fly checks `{}` but the edge probes `{}` ({}): two definitions of healthy", first.0, h.probe_path, cx.policy_at(&["health", "probe_path"])),
                "point both at the same endpoint (QuoteKit: /api/health)",
            );
        }
        let compared = if paths.is_empty() { checks.iter().collect() } else { paths };
        for c in compared {
            let Some((fly_ms, at)) = c.timeout else { continue };
            let edge = ms_text(h.timeout_ms);
            let at_policy = cx.policy_at(&["health", "timeout"]);
            if h.timeout_ms > fly_ms {
                cx.push(
                    "D029",
                    Severity::Warning,
                    file,
                    at,
                    format!("the edge waits {edge} for a probe answer ({at_policy}) but Fly's check gives up after {}: the edge reports healthy an origin Fly is already replacing", ms_text(fly_ms)),
                    format!("set health.timeout to {} or less", ms_text(fly_ms)),
                );
            } else if h.timeout_ms < fly_ms {
                cx.push(
                    "D030",
                    Severity::Info,
                    file,
                    at,
                    format!("Fly's check allows {} but the edge's probe only {edge} ({at_policy}): an origin answering in between is healthy to Fly and failing at the edge", ms_text(fly_ms)),
                    "fine when the edge's timeout is the stricter target on purpose; otherwise align them",
                );
            }
        }
    }
}

/// D031: a release command that builds.
fn check_release_command(cx: &mut Cx<'_>, fly: &Fly<'_, '_>) {
    let Fly { file, src, root, .. } = *fly;
    if let Some(v) = lookup(root, &["deploy", "release_command"]) {
        let command = as_str(v).unwrap_or_default();
        let builds = regex_lite::Regex::new(r"(?:^|[\s;&|(])(?:(?:npm|pnpm|bun)\s+(?:run\s+)?build|yarn\s+(?:run\s+)?build|(?:npx\s+|pnpm\s+exec\s+)?next\s+build|turbo\s+(?:run\s+)?build)\b")
            .is_ok_and(|re| re.is_match(command));
        if builds {
            cx.push(
                "D031",
                Severity::Error,
                file,
                line(src, v.span()),
                format!("release_command `{command}` builds the app: it runs in a temporary Machine before each deploy, and its build is thrown away with it (slow deploys, and a failed build blocks releases)"),
                "build in the Dockerfile (`RUN npm run build`); keep release_command for one-off tasks such as database migrations, or remove it",
            );
        }
    }
}

/// D033/D034: the Fly app is one of the policy's origins.
fn check_app_origin(cx: &mut Cx<'_>, fly: &Fly<'_, '_>) {
    let Fly { file, src, root, .. } = *fly;
    match root.get("app") {
        Some(v) => {
            let app = as_str(v).unwrap_or_default();
            let expected = format!("https://{}.fly.dev", app.to_ascii_lowercase());
            let urls: Vec<String> = cx
                .bundle
                .origins
                .iter()
                .map(|o| o.url.trim_end_matches('/').to_ascii_lowercase())
                .chain(cx.origin_overrides.iter().cloned())
                .collect();
            if !urls.contains(&expected) {
                let list = cx.bundle.origins.iter().map(|o| format!("{} = {}", o.name, o.url)).collect::<Vec<_>>().join(", ");
                cx.push(
                    "D033",
                    Severity::Warning,
                    file,
                    line(src, v.span()),
                    format!("app = \"{app}\" is served at {expected}, which is not an origin of the policy ({}): the edge forwards to another app", if list.is_empty() { "none".to_owned() } else { list }),
                    format!("set an origin's url to \"{expected}\" (or point EDGE_ORIGINS at it), or fix `app`"),
                );
            }
        }
        None => cx.push("D034", Severity::Info, file, None, "fly.toml has no `app`, so its origin URL cannot be compared with the policy's", "add `app = \"<name>\"` (as `fly launch` writes it)"),
    }
}

fn strip_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// D023–D027: what the edge does to the path Fly checks, for uptime monitors that check it
/// through the edge.
fn check_health_path(cx: &mut Cx<'_>, file: &str, at: Option<usize>, label: &str, raw: &str, fly_method: &str) {
    let path = strip_query(raw);
    let bundle = cx.bundle;
    if let Some(h) = bundle.health.as_ref().filter(|h| h.path == path) {
        cx.push(
            "D027",
            Severity::Error,
            file,
            at,
            format!("{label} checks `{path}`, the edge's own health endpoint: Fly's checks go to the Machines directly, and the app does not serve it"),
            format!("check the app's health route instead (the edge probes `{}`)", h.probe_path),
        );
        return;
    }
    let Ok(normal) = edgeguard_core::sanitize::normalize_path(path) else { return };
    let segments: Vec<&str> = normal.split('/').filter(|s| !s.is_empty()).collect();
    let Ok(regexes) = import::Regexes::of(bundle) else { return };
    let (route, name): (&Route, String) = match bundle.matcher.find(&segments, &regexes) {
        Match::Route(i) => match bundle.routes.get(i as usize) {
            Some(r) => (r, format!("route `{}`", r.pattern.as_deref().unwrap_or(""))),
            None => return,
        },
        Match::ParamMismatch(i) => {
            let p = bundle.routes.get(i as usize).and_then(|r| r.pattern.clone()).unwrap_or_default();
            cx.push("D026", Severity::Error, file, at, format!("{label} path `{path}` gets 404 at the edge: a parameter of route `{p}` does not accept it"), "give the health path a route of its own with limit = \"none\"");
            return;
        }
        Match::None => (&bundle.defaults, "[defaults]".to_owned()),
    };
    let why = "Fly's own checks reach the Machines directly, but an uptime monitor checking through the edge";
    if let Some(status) = route.block {
        cx.push(
            "D023",
            Severity::Error,
            file,
            at,
            format!("{label} path `{path}` is blocked at the edge ({name} answers {status}): {why} sees the app as down"),
            "unblock it: give the health path its own route without `block`",
        );
    }
    if method::bit(fly_method) & route.methods == 0 {
        cx.push(
            "D026",
            Severity::Error,
            file,
            at,
            format!("{label} uses {fly_method}, which {name} does not allow (405 at the edge; it allows {})", import::methods_text(route.methods)),
            format!("check with GET, or allow {fly_method} on the route"),
        );
    }
    let mut access = Vec::new();
    if route.require_cookie.is_some() {
        access.push("require_cookie");
    }
    if route.api_key.is_some() {
        access.push("api_key");
    }
    if !route.ip_allow.is_empty() {
        access.push("ip_allow");
    }
    if !route.require_headers.is_empty() {
        access.push("require_headers");
    }
    if !access.is_empty() {
        cx.push(
            "D025",
            Severity::Error,
            file,
            at,
            format!("{label} path `{path}` is behind {} at the edge ({name}): {why} is refused (401/403/400)", access.join(", ")),
            "give the health path its own route without access rules",
        );
    }
    if let Some(limit) = route.limit.and_then(|i| bundle.limits.get(usize::from(i))).filter(|l| !l.shadow) {
        cx.push(
            "D024",
            Severity::Error,
            file,
            at,
            format!(
                "{label} path `{path}` is rate-limited at the edge by {} of {name} ({} per {} s): {why} is throttled (429) and reports an outage",
                if limit.name.starts_with('/') { "an inline limit".to_owned() } else { format!("limit `{}`", limit.name) },
                limit.count,
                limit.window_secs
            ),
            "give the health path its own route with limit = \"none\"",
        );
    }
}

