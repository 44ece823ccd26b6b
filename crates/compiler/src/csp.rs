//! CSP: directive validation, per-route overrides, rendering and lints.
