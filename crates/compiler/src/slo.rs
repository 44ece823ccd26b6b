//! `[slo.<name>]`, `[stats]` and `[alerts]`: service level objectives, the fleet statistics
//! they are measured on, and where their burn-rate alerts go (edgeguard_core::slo, ::stats).
//!
//! ```toml
//! [stats]
//! flush = "5s"                    # at most one flush per isolate per 5 s
//! minute = "1m"                   # the finest bucket; every window counts in these
//! dashboard = "/__edge/dashboard" # guarded by observe.metrics.api_key
//!
//! [slo.api]
//! routes = ["/api/**"]
//! availability = 99.9                                        # % of requests without a 5xx
//! latency = { percentile = 95, max = "200ms", of = "origin" }
//! window = "30d"
//! alerts = ["page", "ticket"]
//!
//! [alerts]
//! slack = "EDGE_ALERT_SLACK_URL"          # worker variables (secrets), never the URL itself
//! webhook = "EDGE_ALERT_WEBHOOK_URL"
//! webhook_token = "EDGE_ALERT_WEBHOOK_TOKEN"
//! posthog = true
//! ```

use edgeguard_core::bundle::MetricsEndpoint;
use edgeguard_core::slo::{Alerts, DEFAULT_WINDOW_MINUTES, Latency, LatencyOf, Slo, severity};
use edgeguard_core::stats::StatsSettings;

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::{self, DashboardDef, S};
use crate::units::{DURATION_HELP, duration_ms};
use crate::{Ctx, codes};

pub const DEFAULT_DASHBOARD_PATH: &str = "/__edge/dashboard";
const DEFAULT_FLUSH_MS: u64 = 5_000;
const MIN_FLUSH_MS: u64 = 1_000;
const MAX_FLUSH_MS: u64 = 60_000;
const MIN_BUCKET_MS: u64 = 100;
const MAX_BUCKET_MS: u64 = 60_000;

/// What the rest of the policy contributes.
pub struct Context<'a> {
    /// Route patterns in bundle order (the index is the route's).
    pub routes: &'a [String],
    pub metrics: Option<&'a MetricsEndpoint>,
    /// Paths the edge already answers itself (health, metrics, CSP reports).
    pub taken: &'a [(String, &'static str)],
    /// `[observe.posthog]`'s host, when the policy has one.
    pub posthog: Option<&'a str>,
}

pub struct Compiled {
    pub stats: StatsSettings,
    pub slos: Vec<Slo>,
    pub alerts: Alerts,
}

pub fn compile(ctx: &mut Ctx, policy: &model::Policy, cx: &Context) -> Compiled {
    let def = policy.stats.as_ref();
    let enabled = def.is_some() || !policy.slo.is_empty();
    let flush_ms = def.and_then(|d| d.flush.as_ref()).map_or(DEFAULT_FLUSH_MS, |v| {
        duration(ctx, v, "flush", MIN_FLUSH_MS, MAX_FLUSH_MS, "\"5s\" (the default) keeps one isolate to one flush per 5 s under any load").unwrap_or(DEFAULT_FLUSH_MS)
    });
    let bucket_ms = def.and_then(|d| d.minute.as_ref()).map_or(60_000, |v| {
        duration(ctx, v, "minute", MIN_BUCKET_MS, MAX_BUCKET_MS, "\"1m\" (the default) in production; a shorter one only makes alert windows shorter, for tests").unwrap_or(60_000)
    });
    let dashboard = if enabled { dashboard(ctx, def.and_then(|d| d.dashboard.as_ref()), cx) } else { None };
    if enabled && cx.metrics.is_none() {
        let span = def.and_then(|d| d.flush.as_ref().or(d.minute.as_ref()).map(S::span)).or_else(|| policy.slo.keys().next().map(S::span)).unwrap_or(0..0);
        ctx.push(
            Diagnostic::warning(codes::SLO_NO_METRICS_KEY, span, "the fleet statistics have no reader: without `observe.metrics` there is no dashboard and no `?scope=fleet`")
                .help("add [observe] metrics = { api_key = \"metrics\" } and an [api_keys.metrics] entry; alerts are sent either way"),
        );
    }
    let alerts = alerts(ctx, policy.alerts.as_ref(), cx);
    let has_destination = alerts.slack_env.is_some() || alerts.webhook_env.is_some() || alerts.posthog;
    let mut slos = Vec::new();
    for (name, def) in &policy.slo {
        if let Some(slo) = slo(ctx, name, def, cx) {
            if slo.alerts != 0 && !has_destination {
                ctx.push(
                    Diagnostic::warning(codes::SLO_NOBODY_ALERTED, name.span(), format!("SLO `{}` raises alerts, but [alerts] names nowhere to send them", name.get_ref()))
                        .help("set [alerts] slack = \"EDGE_ALERT_SLACK_URL\" (a worker secret), webhook = …, or posthog = true; or alerts = [] to only track it"),
                );
            }
            slos.push(slo);
        }
    }
    Compiled { stats: StatsSettings { enabled, bucket_ms, flush_ms, dashboard }, slos, alerts }
}

/// The dashboard's path, for the route conflict check.
pub fn reserved(stats: &StatsSettings) -> Vec<(String, &'static str)> {
    stats.dashboard.iter().map(|p| (p.clone(), "the edge's fleet dashboard")).collect()
}

fn duration(ctx: &mut Ctx, v: &S<String>, key: &str, min: u64, max: u64, help: &str) -> Option<u64> {
    match duration_ms(v.get_ref()) {
        Ok(ms) if (min..=max).contains(&ms) => Some(ms),
        Ok(_) => {
            ctx.push(Diagnostic::error(codes::STATS, v.span(), format!("[stats] `{key}` is {}; it must be from {min} ms to {max} ms", v.get_ref())).help(help.to_owned()));
            None
        }
        Err(e) => {
            ctx.push(Diagnostic::error(codes::DURATION, v.span(), e).help(DURATION_HELP));
            None
        }
    }
}

fn dashboard(ctx: &mut Ctx, v: Option<&S<DashboardDef>>, cx: &Context) -> Option<String> {
    let path = match v.map(S::get_ref) {
        None | Some(DashboardDef::On(true)) => {
            // The default follows the metrics endpoint: without its key there is no guard.
            cx.metrics?;
            return Some(DEFAULT_DASHBOARD_PATH.to_owned()).filter(|p| !cx.taken.iter().any(|(t, _)| t == p));
        }
        Some(DashboardDef::On(false)) => return None,
        Some(DashboardDef::Path(p)) => p.clone(),
    };
    let span = v.map_or(0..0, S::span);
    if cx.metrics.is_none() {
        ctx.push(
            Diagnostic::error(codes::STATS, span, "the dashboard needs `observe.metrics`: it is guarded by the metrics endpoint's API key")
                .help("add [observe] metrics = { api_key = \"metrics\" }, or dashboard = false"),
        );
        return None;
    }
    match edgeguard_core::sanitize::normalize_path(&path) {
        Ok(p) if path.starts_with('/') && p == path => {
            if let Some((_, what)) = cx.taken.iter().find(|(t, _)| *t == p) {
                ctx.push(Diagnostic::error(codes::STATS, span, format!("`{p}` is already {what}")).help("give the dashboard a path of its own, e.g. \"/__edge/dashboard\""));
                return None;
            }
            Some(p)
        }
        _ => {
            ctx.push(Diagnostic::error(codes::STATS, span, format!("`{path}` is not a normalized absolute path")).help("write a path such as \"/__edge/dashboard\""));
            None
        }
    }
}

fn env_name(ctx: &mut Ctx, v: Option<&S<String>>, key: &str) -> Option<String> {
    let v = v?;
    let name = v.get_ref();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return Some(name.clone());
    }
    let help = if name.contains("://") {
        "a webhook URL is a credential: store it with `wrangler secret put EDGE_ALERT_SLACK_URL` and name the variable here"
    } else {
        "name a worker variable: letters, digits and `_`, e.g. \"EDGE_ALERT_WEBHOOK_URL\""
    };
    ctx.push(Diagnostic::error(codes::ALERTS, v.span(), format!("[alerts] `{key}` = \"{name}\" is not a worker variable name")).help(help));
    None
}

fn alerts(ctx: &mut Ctx, def: Option<&model::AlertsDef>, cx: &Context) -> Alerts {
    let Some(def) = def else { return Alerts::default() };
    let posthog = def.posthog.as_ref().is_some_and(|p| *p.get_ref());
    if posthog
        && cx.posthog.is_none()
        && let Some(p) = &def.posthog
    {
        ctx.push(Diagnostic::error(codes::ALERTS, p.span(), "[alerts] posthog = true, but the policy has no [observe.posthog]").help("add [observe.posthog] (its host; the key is the POSTHOG_KEY secret), or remove the key"));
    }
    let webhook_env = env_name(ctx, def.webhook.as_ref(), "webhook");
    let webhook_token_env = env_name(ctx, def.webhook_token.as_ref(), "webhook_token");
    if let (Some(t), None) = (&def.webhook_token, &def.webhook) {
        ctx.push(Diagnostic::error(codes::ALERTS, t.span(), "[alerts] `webhook_token` without a `webhook`").help("name the webhook's URL variable too: webhook = \"EDGE_ALERT_WEBHOOK_URL\""));
    }
    Alerts { slack_env: env_name(ctx, def.slack.as_ref(), "slack"), webhook_env, webhook_token_env, posthog: posthog && cx.posthog.is_some(), posthog_host: cx.posthog.filter(|_| posthog).map(str::to_owned) }
}

fn slo(ctx: &mut Ctx, name: &S<String>, def: &model::SloDef, cx: &Context) -> Option<Slo> {
    let label = name.get_ref();
    let mut ok = true;
    let mut routes = Vec::new();
    let mut route_patterns = Vec::new();
    match &def.routes {
        None => {
            ctx.push(Diagnostic::error(codes::SLO, name.span(), format!("SLO `{label}` has no `routes`")).help("list the route patterns it covers, e.g. routes = [\"/api/**\"]"));
            ok = false;
        }
        Some(list) if list.is_empty() => {
            ctx.push(Diagnostic::error(codes::SLO, name.span(), format!("SLO `{label}` covers no route: `routes` is empty")).help("list the route patterns it covers, e.g. routes = [\"/api/**\"]"));
            ok = false;
        }
        Some(list) => {
            for r in list {
                match cx.routes.iter().position(|p| p == r.get_ref()) {
                    Some(i) => {
                        if !routes.contains(&(i as u32)) {
                            routes.push(i as u32);
                            route_patterns.push(r.get_ref().clone());
                        }
                    }
                    None => {
                        if ctx.unread("routes") {
                            continue;
                        }
                        let d = Diagnostic::error(codes::SLO_ROUTE, r.span(), format!("SLO `{label}`: no route has the pattern `{}`", r.get_ref()));
                        ctx.push(match suggest(r.get_ref(), cx.routes.iter().map(String::as_str)) {
                            Some(best) => d.help(format!("did you mean `{best}`?")),
                            None => d.help("name a [[routes]] entry's `path` exactly as written there"),
                        });
                        ok = false;
                    }
                }
            }
        }
    }
    let availability_ppm = def.availability.as_ref().and_then(|a| {
        let x = *a.get_ref();
        if x.is_finite() && x > 0.0 && x < 100.0 {
            Some((x * 10_000.0).round() as u32)
        } else {
            ctx.push(
                Diagnostic::error(codes::SLO, a.span(), format!("availability {x} is not a percentage between 0 and 100 (exclusive)"))
                    .help("write the share of requests without a 5xx, e.g. 99.9 (100 leaves no error budget)"),
            );
            ok = false;
            None
        }
    });
    let latency = def.latency.as_ref().and_then(|l| latency(ctx, label, name, l, &mut ok));
    if def.availability.is_none() && def.latency.is_none() {
        ctx.push(
            Diagnostic::error(codes::SLO, name.span(), format!("SLO `{label}` has no objective"))
                .help("add availability = 99.9 and/or latency = { percentile = 95, max = \"200ms\" }"),
        );
        ok = false;
    }
    let window_buckets = match &def.window {
        None => DEFAULT_WINDOW_MINUTES,
        Some(w) => match duration_ms(w.get_ref()) {
            Ok(ms) if (3_600_000..=90 * 86_400_000).contains(&ms) => ms / 60_000,
            Ok(_) => {
                ctx.push(Diagnostic::error(codes::SLO, w.span(), format!("SLO window `{}` is not from 1 hour to 90 days", w.get_ref())).help("\"30d\" (the default) or \"28d\" are the usual windows"));
                ok = false;
                DEFAULT_WINDOW_MINUTES
            }
            Err(e) => {
                ctx.push(Diagnostic::error(codes::DURATION, w.span(), e).help(DURATION_HELP));
                ok = false;
                DEFAULT_WINDOW_MINUTES
            }
        },
    };
    let alerts = match &def.alerts {
        None => severity::PAGE | severity::TICKET,
        Some(list) => list.iter().fold(0u8, |bits, s| {
            bits | match s.get_ref() {
                model::SeverityDef::Page => severity::PAGE,
                model::SeverityDef::Ticket => severity::TICKET,
            }
        }),
    };
    ok.then(|| Slo { name: label.clone(), routes, route_patterns, availability_ppm, latency, alerts, window_buckets })
}

fn latency(ctx: &mut Ctx, label: &str, name: &S<String>, l: &model::LatencyDef, ok: &mut bool) -> Option<Latency> {
    let percentile_ppm = match &l.percentile {
        None => {
            ctx.push(Diagnostic::error(codes::SLO, name.span(), format!("SLO `{label}`: the latency objective has no `percentile`")).help("e.g. latency = { percentile = 95, max = \"200ms\" }"));
            None
        }
        Some(p) => {
            let x = *p.get_ref();
            if x.is_finite() && (50.0..=99.99).contains(&x) {
                Some((x * 10_000.0).round() as u32)
            } else {
                ctx.push(Diagnostic::error(codes::SLO, p.span(), format!("percentile {x} is not from 50 to 99.99")).help("p95 is percentile = 95; p99.9 is 99.9"));
                None
            }
        }
    };
    let threshold_ms = match &l.max {
        None => {
            ctx.push(Diagnostic::error(codes::SLO, name.span(), format!("SLO `{label}`: the latency objective has no `max`")).help("e.g. max = \"200ms\""));
            None
        }
        Some(m) => match duration_ms(m.get_ref()) {
            Ok(ms) if ms > 0 && ms <= 60_000 => Some(ms),
            Ok(_) => {
                ctx.push(Diagnostic::error(codes::SLO, m.span(), format!("latency max `{}` is not from 1 ms to 60 s", m.get_ref())).help("e.g. max = \"200ms\""));
                None
            }
            Err(e) => {
                ctx.push(Diagnostic::error(codes::DURATION, m.span(), e).help(DURATION_HELP));
                None
            }
        },
    };
    let of = match l.of.as_ref().map(S::get_ref) {
        None | Some(model::LatencyOfDef::Origin) => LatencyOf::Origin,
        Some(model::LatencyOfDef::Edge) => LatencyOf::Edge,
    };
    match (percentile_ppm, threshold_ms) {
        (Some(percentile_ppm), Some(threshold_ms)) => Some(Latency { percentile_ppm, threshold_ms, of }),
        _ => {
            *ok = false;
            None
        }
    }
}
