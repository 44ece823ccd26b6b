//! Path, target and host normalization on arbitrary text: never a panic, and every accepted
//! path comes out canonical (normalizing it again changes nothing).
#![no_main]

mod common;

use edgeguard_core::sanitize::{normalize_host, normalize_path, normalize_target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    // normalize_path sees a path already split from its query (normalize_target does that).
    if text.starts_with('/')
        && !text.contains(['?', '#'])
        && let Ok(path) = normalize_path(text)
    {
        common::check_canonical_path(&path);
    }
    if let Ok(target) = normalize_target(text) {
        common::check_canonical_path(&target.path);
        assert_eq!(normalize_path(&target.path).as_deref(), Ok(target.path.as_str()));
        let forwarded = target.path_and_query();
        assert!(forwarded.starts_with(&target.path));
    }
    if let Some(host) = normalize_host(text) {
        assert_eq!(normalize_host(&host).as_deref(), Some(host.as_str()), "host normalization is not idempotent");
        assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
    }
});
