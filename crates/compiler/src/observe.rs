//! `[observe]`: the request log, the metrics endpoint, the CSP report intake, PostHog and
//! Analytics Engine, compiled into [`Observe`].
//!
//! ```toml
//! [observe]
//! log = "info"                  # "off" | "error" | "warn" | "info"
//! sample = 1.0                  # share of successful requests logged
//! client_ip = "truncate"        # "truncate" | "full" | "omit"
//! metrics = { path = "/__edge/metrics", api_key = "metrics" }
//! analytics = true
//! csp_limit = { rate = "20/2m", burst = 20 }
//! csp_dedupe = "10m"
//! [observe.posthog]
//! host = "https://us.i.posthog.com"
//! events = ["refusal", "csp_violation", "origin_failure", "pageview"]
//! pageview_sample = 0.01
//! rate = "600/1m"
//! ```
//!
//! The CSP intake exists whenever a `csp.report_to` (top level or a route's) is a path on this
//! site: the edge answers it instead of forwarding reports to the origin.

use std::collections::BTreeSet;

use edgeguard_core::bundle::{CspIntake, IpDetail, Limit, LogLevel, MetricsEndpoint, Observe, PostHog, Scope, event};
use edgeguard_core::observe::{DEFAULT_MAX_REPORT_BYTES, PPM};

use crate::diagnostics::Diagnostic;
use crate::limits::{self, Limits};
use crate::model::{self, LimitRef, S};
use crate::names::Names;
use crate::units::{DURATION_HELP, RATE_HELP, duration_ms, rate};
use crate::{Ctx, codes};

pub const DEFAULT_METRICS_PATH: &str = "/__edge/metrics";
pub const DEFAULT_POSTHOG_HOST: &str = "https://us.i.posthog.com";
/// The intake's limit when the policy names none, `{ rate = "20/2m", burst = 20 }`: 20 reports
/// at once per client, then one every 6 s (10 a minute).
pub const DEFAULT_CSP_LIMIT: (u64, u64, u64) = (20, 120, 20);
pub const DEFAULT_CSP_DEDUPE_MS: u64 = 600_000;
const MAX_CSP_DEDUPE_MS: u64 = 86_400_000;
const DEFAULT_EVENTS: u8 = event::REFUSAL | event::CSP_VIOLATION | event::ORIGIN_FAILURE;
const DEFAULT_PAGEVIEW_PPM: u32 = 10_000;
const DEFAULT_EVENT_RATE: (u64, u64) = (600, 60);
/// Name of the intake's limit in `RateLimit` headers when written inline or left out.
const CSP_LIMIT_NAME: &str = "csp-reports";

/// What the rest of the policy contributes.
pub struct Context<'a> {
    /// Normalized paths of every `csp.report_to` that is a path on this site.
    pub csp_paths: &'a BTreeSet<String>,
    /// `[api_keys]` names.
    pub api_keys: &'a Names,
    pub health_path: Option<&'a str>,
    /// Header set for the edge's own answers (the defaults').
    pub headers: u16,
}

pub fn compile(ctx: &mut Ctx, o: Option<&model::Observe>, limits: &mut Limits, cx: &Context) -> Observe {
    let empty = model::Observe::default();
    let o = o.unwrap_or(&empty);
    let log = o.log.as_ref().map_or(LogLevel::Info, |l| match l.get_ref() {
        model::LogLevel::Off => LogLevel::Off,
        model::LogLevel::Error => LogLevel::Error,
        model::LogLevel::Warn => LogLevel::Warn,
        model::LogLevel::Info => LogLevel::Info,
    });
    let sample_ppm = share(ctx, o.sample.as_ref(), "sample", PPM);
    let client_ip = o.client_ip.as_ref().map_or(IpDetail::Truncate, |c| match c.get_ref() {
        model::ClientIpDetail::Truncate => IpDetail::Truncate,
        model::ClientIpDetail::Full => IpDetail::Full,
        model::ClientIpDetail::Omit => IpDetail::Omit,
    });
    let csp = csp_intake(ctx, o, limits, cx);
    let metrics = o.metrics.as_ref().and_then(|m| metrics(ctx, m, cx));
    let posthog = o.posthog.as_ref().and_then(|p| posthog(ctx, p, csp.is_some()));
    Observe { log, sample_ppm, client_ip, metrics, analytics: o.analytics.as_ref().is_none_or(|a| *a.get_ref()), csp, posthog, headers: cx.headers }
}

/// Paths the edge answers itself because of `[observe]`, for the route conflict check.
pub fn reserved(o: &Observe) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = o.csp.iter().flat_map(|c| c.paths.iter().map(|p| (p.clone(), "the edge's CSP report intake"))).collect();
    out.extend(o.metrics.iter().map(|m| (m.path.clone(), "the edge's metrics endpoint")));
    out
}

/// The path part of a `report_to` that names a path on this site, normalized; `None` for an
/// https URL (reports then go elsewhere) or a path the edge could never match.
pub fn report_path(report_to: &str) -> Option<String> {
    if !report_to.starts_with('/') || report_to.starts_with("//") {
        return None;
    }
    let path = report_to.split(['?', '#']).next().unwrap_or(report_to);
    edgeguard_core::sanitize::normalize_path(path).ok()
}

/// A share from 0 to 1 in millionths.
fn share(ctx: &mut Ctx, v: Option<&S<f64>>, key: &str, default: u32) -> u32 {
    let Some(v) = v else { return default };
    let x = *v.get_ref();
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        (x * f64::from(PPM)).round() as u32
    } else {
        ctx.push(
            Diagnostic::error(codes::OBSERVE, v.span(), format!("`{key}` is {x}; it is a share from 0 to 1"))
                .help("write 1 for all, 0.01 for one in a hundred, 0 for none"),
        );
        default
    }
}

fn csp_intake(ctx: &mut Ctx, o: &model::Observe, limits: &mut Limits, cx: &Context) -> Option<CspIntake> {
    let dedupe_ms = match &o.csp_dedupe {
        None => DEFAULT_CSP_DEDUPE_MS,
        Some(v) => match duration_ms(v.get_ref()) {
            Ok(ms) if ms <= MAX_CSP_DEDUPE_MS => ms,
            Ok(_) => {
                ctx.push(Diagnostic::error(codes::OBSERVE, v.span(), "`csp_dedupe` is longer than a day").help("reports repeat on every page load; \"10m\" (the default) to \"1h\" keeps the volume down"));
                DEFAULT_CSP_DEDUPE_MS
            }
            Err(e) => {
                ctx.push(Diagnostic::error(codes::DURATION, v.span(), e).help(DURATION_HELP));
                DEFAULT_CSP_DEDUPE_MS
            }
        },
    };
    if cx.csp_paths.is_empty() {
        // A `report_to` that could not be read may well have been a path.
        let unread = ctx.unread("csp.report_to");
        for (key, span) in [("csp_limit", o.csp_limit.as_ref().map(S::span)), ("csp_dedupe", o.csp_dedupe.as_ref().map(S::span))] {
            if let Some(span) = span.filter(|_| !unread) {
                ctx.push(
                    Diagnostic::warning(codes::OBSERVE_UNUSED, span, format!("`{key}` has no effect: no `csp.report_to` is a path on this site"))
                        .help("set [csp] report_to = \"/__edge/csp-report\" so the edge takes the reports, or remove the key"),
                );
            }
        }
        return None;
    }
    let limit = match &o.csp_limit {
        None => {
            let (count, window_secs, burst) = DEFAULT_CSP_LIMIT;
            let index = u16::try_from(limits.table.len()).ok();
            limits.table.push(Limit::local_per_ip(CSP_LIMIT_NAME, count, window_secs, burst));
            index
        }
        Some(v) => {
            let index = limits::resolve(ctx, limits, v, CSP_LIMIT_NAME, "observe.csp_limit");
            if let Some(l) = index.and_then(|i| limits.table.get(usize::from(i))).filter(|l| l.scope != Scope::Local) {
                let named = match v.get_ref() {
                    LimitRef::Named(n) => format!("limit `{n}`"),
                    LimitRef::Inline(_) => "the inline limit".to_owned(),
                };
                ctx.push(
                    Diagnostic::error(codes::OBSERVE, v.span(), format!("`csp_limit`: {named} has scope = \"{}\"; the CSP intake counts in the isolate", scope_name(l.scope)))
                        .help("use a limit with scope = \"local\" (the default): reports are refused before any Durable Object is asked"),
                );
            }
            index
        }
    };
    Some(CspIntake { paths: cx.csp_paths.iter().cloned().collect(), limit, dedupe_ms, max_bytes: DEFAULT_MAX_REPORT_BYTES })
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Local => "local",
        Scope::Global => "global",
        Scope::Cloudflare => "cloudflare",
    }
}

fn metrics(ctx: &mut Ctx, m: &model::MetricsDef, cx: &Context) -> Option<MetricsEndpoint> {
    let path = match &m.path {
        None => DEFAULT_METRICS_PATH.to_owned(),
        Some(v) => match edgeguard_core::sanitize::normalize_path(v.get_ref()) {
            Ok(p) if v.get_ref().starts_with('/') && p == *v.get_ref() => {
                let taken = if cx.health_path == Some(p.as_str()) {
                    Some("the health endpoint")
                } else if cx.csp_paths.contains(&p) {
                    Some("the CSP report intake (`csp.report_to`)")
                } else {
                    None
                };
                if let Some(what) = taken {
                    ctx.push(Diagnostic::error(codes::OBSERVE, v.span(), format!("`{p}` is already {what}")).help("give the metrics endpoint a path of its own, e.g. \"/__edge/metrics\""));
                    return None;
                }
                p
            }
            _ => {
                ctx.push(
                    Diagnostic::error(codes::OBSERVE, v.span(), format!("`{}` is not a normalized absolute path", v.get_ref()))
                        .help("write a path such as \"/__edge/metrics\""),
                );
                return None;
            }
        },
    };
    let Some(key) = &m.api_key else {
        if !ctx.unread("observe.metrics.api_key") {
            let span = m.path.as_ref().map_or(0..0, S::span);
            ctx.push(
                Diagnostic::error(codes::MISSING, span, "the metrics endpoint has no `api_key`")
                    .help("metrics = { path = \"/__edge/metrics\", api_key = \"metrics\" } with an [api_keys.metrics] entry: counters tell an attacker what the edge refuses"),
            );
        }
        return None;
    };
    let api_key = cx.api_keys.lookup(ctx, key.get_ref(), key.span())?;
    Some(MetricsEndpoint { path, api_key })
}

fn posthog(ctx: &mut Ctx, p: &model::PostHogDef, csp_intake: bool) -> Option<PostHog> {
    let host = match &p.host {
        None => DEFAULT_POSTHOG_HOST.to_owned(),
        Some(v) => check_host(ctx, v)?,
    };
    let mut events = DEFAULT_EVENTS;
    if let Some(list) = &p.events {
        events = 0;
        for e in list {
            events |= match e.get_ref() {
                model::PostHogEvent::Refusal => event::REFUSAL,
                model::PostHogEvent::CspViolation => event::CSP_VIOLATION,
                model::PostHogEvent::OriginFailure => event::ORIGIN_FAILURE,
                model::PostHogEvent::Pageview => event::PAGEVIEW,
            };
        }
        let at = |kind: model::PostHogEvent| list.iter().find(|e| *e.get_ref() == kind).map(S::span);
        if list.is_empty() {
            let span = p.host.as_ref().map_or(0..0, S::span);
            ctx.push(
                Diagnostic::warning(codes::OBSERVE_UNUSED, span, "`events = []`: nothing is ever sent to PostHog")
                    .help("list the events to send, or remove [observe.posthog]"),
            );
        }
        if let Some(span) = at(model::PostHogEvent::CspViolation).filter(|_| !csp_intake && !ctx.unread("csp.report_to")) {
            ctx.push(
                Diagnostic::warning(codes::OBSERVE_UNUSED, span, "\"csp_violation\" can never be sent: no `csp.report_to` is a path on this site")
                    .help("set [csp] report_to = \"/__edge/csp-report\" so the edge takes the reports"),
            );
        }
    }
    let pageview_ppm = share(ctx, p.pageview_sample.as_ref(), "pageview_sample", DEFAULT_PAGEVIEW_PPM);
    if events & event::PAGEVIEW != 0 && pageview_ppm == 0 {
        let span = p.pageview_sample.as_ref().map_or(0..0, S::span);
        ctx.push(
            Diagnostic::warning(codes::OBSERVE_UNUSED, span, "\"pageview\" is listed but `pageview_sample = 0` sends none")
                .help("raise pageview_sample (0.01 sends one page view in a hundred), or drop \"pageview\" from events"),
        );
    }
    let (rate_count, rate_window_secs) = match &p.rate {
        None => DEFAULT_EVENT_RATE,
        Some(v) => match rate(v.get_ref()) {
            Ok(r) => r,
            Err(e) => {
                ctx.push(Diagnostic::error(codes::RATE, v.span(), e).help(RATE_HELP));
                DEFAULT_EVENT_RATE
            }
        },
    };
    Some(PostHog { host, events, pageview_ppm, rate_count, rate_window_secs })
}

/// An https URL with a host and no query or fragment; returned without a trailing slash.
fn check_host(ctx: &mut Ctx, v: &S<String>) -> Option<String> {
    let s = v.get_ref().trim_end_matches('/');
    let lower = s.to_ascii_lowercase();
    let problem = if let Some(rest) = lower.strip_prefix("https://") {
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            Some("the URL has no host")
        } else if s.contains(['?', '#', ' ', '"', '\\']) || !s.is_ascii() {
            Some("the URL has a query, a fragment or characters a URL cannot hold")
        } else {
            None
        }
    } else if lower.starts_with("http://") {
        Some("events would travel in plain http, project key included")
    } else {
        Some("it is not an https:// URL")
    };
    match problem {
        None => Some(s.to_owned()),
        Some(why) => {
            ctx.push(
                Diagnostic::error(codes::OBSERVE, v.span(), format!("invalid PostHog host `{}`: {why}", v.get_ref()))
                    .help("write \"https://us.i.posthog.com\" or \"https://eu.i.posthog.com\" (or your reverse proxy's https URL)"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, compile as compile_policy};

    const PRELUDE: &str = "version = 1\n[origins.app]\nurl = \"https://app.fly.dev\"\n[api_keys.metrics]\nsha256 = [\"0000000000000000000000000000000000000000000000000000000000000000\"]\n";

    fn observe_of(body: &str) -> (Option<Observe>, Vec<&'static str>) {
        let out = compile_policy(&format!("{PRELUDE}{body}"), &Options::default());
        let codes = out.diagnostics.iter().map(|d| d.code).collect();
        (out.bundle.map(|b| b.observe), codes)
    }

    #[test]
    fn defaults_without_a_table() {
        let (o, codes) = observe_of("");
        let o = o.unwrap();
        assert!(codes.is_empty(), "{codes:?}");
        assert_eq!((o.log, o.sample_ppm, o.client_ip, o.analytics), (LogLevel::Info, PPM, IpDetail::Truncate, true));
        assert!(o.metrics.is_none() && o.csp.is_none() && o.posthog.is_none());
    }

    #[test]
    fn the_whole_table() {
        let (o, codes) = observe_of(
            "[csp]\nreport_to = \"/__edge/csp-report\"\n[observe]\nlog = \"warn\"\nsample = 0.25\nclient_ip = \"omit\"\nmetrics = { api_key = \"metrics\" }\nanalytics = false\ncsp_dedupe = \"1h\"\n[observe.posthog]\nhost = \"https://eu.i.posthog.com/\"\nevents = [\"refusal\", \"pageview\"]\npageview_sample = 0.5\nrate = \"100/1m\"\n",
        );
        assert!(codes.is_empty(), "{codes:?}");
        let o = o.unwrap();
        assert_eq!((o.log, o.sample_ppm, o.client_ip, o.analytics), (LogLevel::Warn, 250_000, IpDetail::Omit, false));
        assert_eq!(o.metrics.as_ref().map(|m| (m.path.as_str(), m.api_key)), Some(("/__edge/metrics", 0)));
        let csp = o.csp.unwrap();
        assert_eq!(csp.paths, vec!["/__edge/csp-report".to_owned()]);
        assert_eq!((csp.dedupe_ms, csp.max_bytes), (3_600_000, 65_536));
        assert!(csp.limit.is_some(), "the default intake limit");
        let ph = o.posthog.unwrap();
        assert_eq!(ph.host, "https://eu.i.posthog.com");
        assert_eq!(ph.events, event::REFUSAL | event::PAGEVIEW);
        assert_eq!((ph.pageview_ppm, ph.rate_count, ph.rate_window_secs), (500_000, 100, 60));
    }

    #[test]
    fn the_intake_follows_report_to_paths_and_its_default_limit() {
        let out = compile_policy(
            &format!("{PRELUDE}[csp]\nreport_to = \"/r?x=1\"\n[[routes]]\npath = \"/embed/**\"\ncsp = {{ report_to = \"/embed/r\" }}\n[[routes]]\npath = \"/ext\"\ncsp = {{ report_to = \"https://r.example/csp\" }}\n"),
            &Options::default(),
        );
        let b = out.bundle.unwrap();
        let csp = b.observe.csp.unwrap();
        assert_eq!(csp.paths, vec!["/embed/r".to_owned(), "/r".to_owned()]);
        let limit = &b.limits[usize::from(csp.limit.unwrap())];
        assert_eq!((limit.name.as_str(), limit.count, limit.window_secs, limit.burst, limit.scope), ("csp-reports", 20, 120, 20, Scope::Local));
        // An https report_to only: no intake.
        let (o, _) = observe_of("[csp]\nreport_to = \"https://r.example/csp\"\n");
        assert!(o.unwrap().csp.is_none());
        // A report-uri in an off CSP is never sent: no intake.
        let (o, _) = observe_of("[csp]\nmode = \"off\"\nreport_to = \"/r\"\n");
        assert!(o.unwrap().csp.is_none());
    }

    #[test]
    fn csp_limit_by_name_inline_or_none() {
        let (o, codes) = observe_of("[csp]\nreport_to = \"/r\"\n[limits.reports]\nrate = \"5/1m\"\n[observe]\ncsp_limit = \"reports\"\n");
        assert!(codes.is_empty(), "{codes:?}");
        assert!(o.unwrap().csp.unwrap().limit.is_some());
        let (o, _) = observe_of("[csp]\nreport_to = \"/r\"\n[observe]\ncsp_limit = \"none\"\n");
        assert_eq!(o.unwrap().csp.unwrap().limit, None);
        let (_, codes) = observe_of("[csp]\nreport_to = \"/r\"\n[limits.g]\nrate = \"5/1m\"\nscope = \"global\"\n[observe]\ncsp_limit = \"g\"\n");
        assert!(codes.contains(&"E100"), "{codes:?}");
        let (_, codes) = observe_of("[csp]\nreport_to = \"/r\"\n[observe]\ncsp_limit = \"nope\"\n");
        assert!(codes.contains(&"E050"), "{codes:?}");
    }

    #[test]
    fn errors_and_warnings() {
        for (body, code) in [
            ("[observe]\nsample = 1.5\n", "E100"),
            ("[observe]\nsample = -0.1\n", "E100"),
            ("[observe]\nmetrics = { path = \"/m\" }\n", "E005"),
            ("[observe]\nmetrics = { path = \"m\", api_key = \"metrics\" }\n", "E100"),
            ("[observe]\nmetrics = { api_key = \"metrcs\" }\n", "E051"),
            ("[health]\n[observe]\nmetrics = { path = \"/__edge/health\", api_key = \"metrics\" }\n", "E100"),
            ("[csp]\nreport_to = \"/r\"\n[observe]\nmetrics = { path = \"/r\", api_key = \"metrics\" }\n", "E100"),
            ("[observe]\ncsp_dedupe = \"2d\"\n", "E100"),
            ("[observe]\ncsp_dedupe = \"10 minutes\"\n", "E010"),
            ("[observe.posthog]\nhost = \"http://us.i.posthog.com\"\n", "E100"),
            ("[observe.posthog]\nhost = \"us.i.posthog.com\"\n", "E100"),
            ("[observe.posthog]\nhost = \"https://x.example/?a=1\"\n", "E100"),
            ("[observe.posthog]\nrate = \"lots\"\n", "E012"),
            ("[observe.posthog]\nevents = [\"refusals\"]\n", "E004"),
            ("[observe]\nlog = \"debug\"\n", "E004"),
            ("[observe]\nverbose = true\n", "E002"),
            ("[observe.posthog]\nevents = [\"csp_violation\"]\n", "W100"),
            ("[observe.posthog]\nevents = [\"pageview\"]\npageview_sample = 0\n", "W100"),
            ("[observe.posthog]\nevents = []\n", "W100"),
            ("[observe]\ncsp_limit = \"none\"\n", "W100"),
        ] {
            let (_, codes) = observe_of(body);
            assert!(codes.contains(&code), "{body}: {codes:?}");
        }
    }

    #[test]
    fn reserved_paths_make_routes_unreachable() {
        let (_, codes) = observe_of("[csp]\nreport_to = \"/__edge/csp-report\"\n[[routes]]\npath = \"/__edge/csp-report\"\n");
        assert!(codes.contains(&"E042"), "{codes:?}");
        let (_, codes) = observe_of("[observe]\nmetrics = { api_key = \"metrics\" }\n[[routes]]\npath = \"/__edge/metrics\"\n");
        assert!(codes.contains(&"E042"), "{codes:?}");
    }

    #[test]
    fn report_paths() {
        assert_eq!(report_path("/a/./b?x#y").as_deref(), Some("/a/b"));
        assert_eq!(report_path("https://r.example/x"), None);
        assert_eq!(report_path("//r.example/x"), None);
    }
}
