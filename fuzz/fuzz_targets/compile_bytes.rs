//! The compiler on arbitrary bytes: diagnostics, never a panic. Whatever compiles must encode,
//! load in the engine and decide a few requests.
#![no_main]

mod common;

use edgeguard_compiler::{Options, compile_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = compile_bytes(data, &Options::default());
    common::check_output(data, &out);
});
