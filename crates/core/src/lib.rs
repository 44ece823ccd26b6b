//! edgeguard's engine: pure decisions over a compiled policy bundle.
//!
//! No I/O, no clock reads, no randomness: the worker, the CLI and the playground pass the time
//! and a random draw in, so all three give the same answer for the same request.

pub mod access;
pub mod bots;
pub mod bundle;
pub mod cache;
pub mod cidr;
pub mod csp;
pub mod dates;
pub mod dashboard;
pub mod decision;
pub mod engine;
pub mod explain;
pub mod geo;
pub mod glob;
pub mod headers;
pub mod health;
pub mod https;
pub mod json;
pub mod limits;
pub mod observe;
pub mod origins;
pub mod prometheus;
pub mod request;
pub mod routes;
pub mod sanitize;
pub mod scan;
pub mod sessions;
pub mod shadow;
pub mod slo;
pub mod vocab;
pub mod stats;
pub mod shield;

pub use bundle::{Bundle, FORMAT_VERSION, LoadError};
pub use decision::{Action, Decision, Reason};
pub use engine::{Draw, Engine, Overrides};
pub use explain::{Explanation, explain};
pub use limits::Limiter;
pub use request::{CfFacts, RequestFacts};
