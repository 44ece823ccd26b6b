//! edgeguard's engine: pure decisions over a compiled policy bundle.
//!
//! No I/O, no clock reads, no randomness: the worker, the CLI and the playground pass the time
//! and a random draw in, so all three give the same answer for the same request.
//!
//! # Examples
//!
//! A policy compiled to a bundle, the engine built from it, and one request decided: an
//! `http://` request is redirected to `https://`, and an `https://` one forwarded to the origin.
//!
//! ```
//! use edgeguard_core::{Action, Draw, Engine, Reason, RequestFacts};
//!
//! let policy = "version = 1\n[app]\nname = \"hello\"\n[origins.app]\nurl = \"https://hello.fly.dev\"\n";
//! let bundle = edgeguard_compiler::compile(policy, &Default::default()).bundle.expect("the policy compiles");
//! let engine = Engine::new(bundle)?;
//! let mut limiter = engine.new_limiter(7);
//!
//! let headers = [("host", "hello.example")];
//! let req = RequestFacts { method: "GET", url: "http://hello.example/", headers: &headers, peer_ip: None, cf: Default::default() };
//! let d = engine.decide(&req, &mut limiter, 0, Draw::default());
//! assert_eq!((d.action, d.reason, d.status), (Action::Redirect, Reason::HttpsRedirect, Some(301)));
//! assert_eq!(d.location.as_deref(), Some("https://hello.example/"));
//!
//! let req = RequestFacts { url: "https://hello.example/pricing?plan=pro", ..req };
//! let d = engine.decide(&req, &mut limiter, 0, Draw::default());
//! assert_eq!((d.action, d.reason), (Action::Forward, Reason::Ok));
//! // `explain` is the same decision as the CLI and the playground show it.
//! assert_eq!(edgeguard_core::explain(&engine, &d).action, Action::Forward);
//! # Ok::<(), edgeguard_core::LoadError>(())
//! ```
//!
//! # Layers
//!
//! The modules import in one direction only: each may use the modules of the layers below it,
//! never one beside or above it (held by the `layers` test below, which reads every source
//! file).
//!
//! | Layer | Modules | What they are |
//! |---|---|---|
//! | 0 | `vocab`, `scan`, `glob`, `cidr`, `csp`, `dates`, `prometheus`, `slo` | leaves: the shared vocabulary (time, lanes, overrides, report formats, RateLimit fields) and text helpers |
//! | 1 | `json`, `request`, `routes`, `stats` | the request's facts, the route matcher, the fleet statistics |
//! | 2 | `bots`, `geo`, `sessions`, `dashboard` | policy parts the bundle carries |
//! | 3 | `shield` | the shield (uses `bots`' user-agent scan) |
//! | 4 | `bundle` | the compiled policy |
//! | 5 | `cache`, `health`, `limits`, `origins`, `sanitize` | stages that read the bundle |
//! | 6 | `decision` | what `decide` returns |
//! | 7 | `access`, `https`, `headers` | stages that shape a decision |
//! | 8 | `engine`, `response` | the pipeline (`decide`, and its endpoints' steps in `engine::endpoints`); a response's header operations in order |
//! | 9 | `observe`, `explain` | what is told about a decision |
//! | 10 | `shadow` | a candidate policy decided and observed next to the active one |

// Public: what the compiler, the CLI, the playground, the worker, the fuzz targets and the
// benchmarks use. Private: what only the engine uses; the few items of theirs the public types
// carry are re-exported (`Lane` below, `limits::Nanos`, `observe::{ReportFormat, rfc3339_millis}`…).
pub mod access;
pub mod bots;
pub mod bundle;
pub mod cache;
pub mod cidr;
pub mod csp;
mod dates;
pub mod dashboard;
pub mod decision;
pub mod engine;
pub mod explain;
pub mod geo;
pub mod glob;
pub mod headers;
pub mod health;
mod https;
pub mod json;
pub mod limits;
pub mod observe;
mod origins;
mod prometheus;
pub mod request;
pub mod response;
pub mod routes;
pub mod sanitize;
mod scan;
pub mod sessions;
pub mod shadow;
pub mod slo;
mod vocab;
pub mod stats;
pub mod shield;

pub use bundle::{Bundle, FORMAT_VERSION, LoadError};
pub use decision::{Action, Decision, Reason};
pub use engine::{Draw, Engine, Overrides};
pub use explain::{Explanation, explain};
pub use limits::Limiter;
pub use request::{CfFacts, RequestFacts};
pub use vocab::Lane;

#[cfg(test)]
mod layers {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    /// Each module's layer (the table in the crate's documentation).
    const LAYERS: &[(&str, u8)] = &[
        ("vocab", 0),
        ("scan", 0),
        ("glob", 0),
        ("cidr", 0),
        ("csp", 0),
        ("dates", 0),
        ("prometheus", 0),
        ("slo", 0),
        ("json", 1),
        ("request", 1),
        ("routes", 1),
        ("stats", 1),
        ("bots", 2),
        ("geo", 2),
        ("sessions", 2),
        ("dashboard", 2),
        ("shield", 3),
        ("bundle", 4),
        ("cache", 5),
        ("health", 5),
        ("limits", 5),
        ("origins", 5),
        ("sanitize", 5),
        ("decision", 6),
        ("access", 7),
        ("https", 7),
        ("headers", 7),
        ("engine", 8),
        ("response", 8),
        ("observe", 9),
        ("explain", 9),
        ("shadow", 10),
    ];

    /// Every source file but this one, by path under `src/`.
    const SOURCES: &[(&str, &str)] = &[
        ("access.rs", include_str!("access.rs")),
        ("bots.rs", include_str!("bots.rs")),
        ("bundle.rs", include_str!("bundle.rs")),
        ("cache.rs", include_str!("cache.rs")),
        ("cidr.rs", include_str!("cidr.rs")),
        ("csp.rs", include_str!("csp.rs")),
        ("dashboard.rs", include_str!("dashboard.rs")),
        ("dates.rs", include_str!("dates.rs")),
        ("decision.rs", include_str!("decision.rs")),
        ("engine.rs", include_str!("engine.rs")),
        ("engine/endpoints.rs", include_str!("engine/endpoints.rs")),
        ("explain.rs", include_str!("explain.rs")),
        ("geo.rs", include_str!("geo.rs")),
        ("glob.rs", include_str!("glob.rs")),
        ("headers.rs", include_str!("headers.rs")),
        ("health.rs", include_str!("health.rs")),
        ("https.rs", include_str!("https.rs")),
        ("json.rs", include_str!("json.rs")),
        ("limits.rs", include_str!("limits.rs")),
        ("observe/mod.rs", include_str!("observe/mod.rs")),
        ("observe/analytics.rs", include_str!("observe/analytics.rs")),
        ("observe/csp_report.rs", include_str!("observe/csp_report.rs")),
        ("observe/dedupe.rs", include_str!("observe/dedupe.rs")),
        ("observe/flight.rs", include_str!("observe/flight.rs")),
        ("observe/line.rs", include_str!("observe/line.rs")),
        ("observe/metrics.rs", include_str!("observe/metrics.rs")),
        ("observe/posthog.rs", include_str!("observe/posthog.rs")),
        ("observe/redact.rs", include_str!("observe/redact.rs")),
        ("observe/sampling.rs", include_str!("observe/sampling.rs")),
        ("origins.rs", include_str!("origins.rs")),
        ("prometheus.rs", include_str!("prometheus.rs")),
        ("request.rs", include_str!("request.rs")),
        ("response.rs", include_str!("response.rs")),
        ("routes.rs", include_str!("routes.rs")),
        ("sanitize.rs", include_str!("sanitize.rs")),
        ("scan.rs", include_str!("scan.rs")),
        ("sessions.rs", include_str!("sessions.rs")),
        ("shadow.rs", include_str!("shadow.rs")),
        ("shield.rs", include_str!("shield.rs")),
        ("slo.rs", include_str!("slo.rs")),
        ("stats.rs", include_str!("stats.rs")),
        ("vocab.rs", include_str!("vocab.rs")),
    ];

    /// Names that resolve to a lower layer through a re-export (see the crate documentation).
    const REEXPORTED: &[(&str, &str)] = &[];

    fn layer(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
    }

    /// The crate modules a source names outside comments and its tests: `crate::x::…` and each
    /// path of `crate::{x, y::z}`.
    fn imports(source: &str) -> Vec<String> {
        let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
        let mut out = Vec::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for rest in line.match_indices("crate::").filter_map(|(at, _)| line.get(at..)?.strip_prefix("crate::")) {
                match rest.strip_prefix('{') {
                    Some(group) => {
                        let (mut depth, mut start) = (0u32, true);
                        for (i, c) in group.char_indices() {
                            match c {
                                '{' => depth = depth.saturating_add(1),
                                '}' if depth == 0 => break,
                                '}' => depth = depth.saturating_sub(1),
                                ',' if depth == 0 => start = true,
                                _ if start && !c.is_whitespace() => {
                                    out.push(ident(&group[i..]));
                                    start = false;
                                }
                                _ => {}
                            }
                        }
                    }
                    None => out.push(ident(rest)),
                }
            }
        }
        out.retain(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        out
    }

    #[test]
    fn every_module_imports_only_from_layers_below() {
        let mut wrong = Vec::new();
        for (path, source) in SOURCES {
            let module = path.trim_end_matches(".rs").split('/').next().unwrap_or_default();
            let own = layer(module).unwrap_or_else(|| panic!("{path}: {module} has no layer"));
            let mut source = (*source).to_owned();
            for (_, name) in REEXPORTED.iter().filter(|(p, _)| p == path) {
                source = source.replace(name, "");
            }
            for used in imports(&source).into_iter().filter(|m| m != module) {
                match layer(&used) {
                    Some(l) if l < own => {}
                    Some(l) => wrong.push(format!("{path} (layer {own}) uses {used} (layer {l})")),
                    None => wrong.push(format!("{path} uses {used}, which has no layer")),
                }
            }
        }
        assert!(wrong.is_empty(), "imports against the layer order:\n{}", wrong.join("\n"));
    }

    #[test]
    fn every_module_has_a_layer_and_its_sources_are_read() {
        let lib = include_str!("lib.rs");
        let declared: Vec<&str> = lib.lines().filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod "))).map(|l| l.trim_end_matches(';')).filter(|m| *m != "layers {").collect();
        for module in &declared {
            assert!(layer(module).is_some(), "{module} has no layer");
        }
        assert_eq!(declared.len(), LAYERS.len(), "a layer for each module");
        for (parent, file) in [("observe", include_str!("observe/mod.rs")), ("engine", include_str!("engine.rs"))] {
            for child in file.lines().filter_map(|l| l.trim().strip_prefix("mod ")).map(|l| l.trim_end_matches(';')).filter(|m| *m != "tests {") {
                let path = format!("{parent}/{child}.rs");
                assert!(SOURCES.iter().any(|(p, _)| *p == path), "{path} is not read by the layer test");
            }
        }
        assert!(imports("use crate::{a::B, b::{C, D}};\nlet x = crate::c::f();\n// crate::d").iter().eq(["a", "b", "c"].iter()));
    }
}
