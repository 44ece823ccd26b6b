//! The bundle loader on corrupted bundles: `Engine::load` returns an error, never panics, and a
//! bundle that loads decides requests without panicking.
//!
//! First byte: bit 7 clear → the rest of the input is the bundle as is (the committed seeds are
//! real bundles); bit 7 set → a real fixture bundle (`byte % 4`) with the rest of the input
//! applied as edits: 4-byte records `op, offset (u16 LE), value` (op % 4: set byte, xor,
//! insert, truncate). Bit 6 set → the edited bundle's SHA-256 is written again over its body,
//! so the edits reach the decoder behind the checksum (a damaged bundle that still hashes right,
//! as a hand-crafted one would).
#![no_main]

mod common;

use edgeguard_core::Engine;
use libfuzzer_sys::fuzz_target;

fn mutate(mut bytes: Vec<u8>, edits: &[u8]) -> Vec<u8> {
    for rec in edits.chunks_exact(4).take(64) {
        let [op, lo, hi, value] = [rec[0], rec[1], rec[2], rec[3]];
        if bytes.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([lo, hi])) % bytes.len();
        match op % 4 {
            0 => bytes[at] = value,
            1 => bytes[at] ^= value.max(1),
            2 => bytes.insert(at, value),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

/// The digest the header carries (bytes 8..40) recomputed over the body (40..).
fn reseal(bytes: &mut [u8]) {
    use sha2::{Digest, Sha256};
    if bytes.len() >= 40 {
        let digest = Sha256::digest(&bytes[40..]);
        bytes[8..40].copy_from_slice(&digest);
    }
}

const REQUESTS: &str = "GET https://lawnquote.online/\ncf-connecting-ip: 198.51.100.1\n\n\
POST https://lawnquote.online/api/admin/x\ncookie: sb-a-auth-token=1\ncontent-length: 9\n\n\
GET https://lawnquote.online/api/quotes/123e4567-e89b-12d3-a456-426614174000/pdf\n\n\
GET http://www.lawnquote.online/__edge/health";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode & 0x80 == 0 {
        rest.to_vec()
    } else {
        let bundles = common::bundles();
        let base = bundles.get(usize::from(mode) % bundles.len()).cloned().unwrap_or_default();
        let mut bytes = mutate(base, rest);
        if mode & 0x40 != 0 {
            reseal(&mut bytes);
        }
        bytes
    };
    match Engine::load(&bytes) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(engine) => {
            let requests = common::parse_requests(REQUESTS, 4);
            common::run_requests(&engine, &requests, false);
        }
    }
});
