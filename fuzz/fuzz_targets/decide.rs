//! `decide` on arbitrary requests (method, target, headers, client IP, peer address) against
//! each fixture policy. Input: a selector line (first byte mod 4 picks the policy, see
//! `common::POLICIES`), then up to four requests in the text format of `common::parse_requests`,
//! sent one second apart to one limiter.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let engines = common::engines();
    let Some(engine) = engines.get(usize::from(selector) % engines.len()) else { return };
    let text = String::from_utf8_lossy(rest);
    let text = text.split_once('\n').map_or("", |(_, r)| r);
    let requests = common::parse_requests(text, 4);
    common::run_requests(engine, &requests, true);
});
