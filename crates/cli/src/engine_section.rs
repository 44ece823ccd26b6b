//! The `edgeguard-engine` custom section of an engine's wasm: the bundle format it reads
//! (u32 LE) and the edgeguard version it was built from (crates/worker writes it). Shared by
//! the CLI's build script, which refuses to embed a mismatched engine, and `doctor`, which
//! reads it from a built worker directory.

/// What an engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSection {
    pub format: u32,
    pub version: String,
}

/// The section of `wasm`, or `None` when it has none (not an edgeguard engine, or not wasm).
pub fn read(wasm: &[u8]) -> Option<EngineSection> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(section)) if section.name() == "edgeguard-engine" => {
                let data = section.data();
                let format = u32::from_le_bytes(data.get(..4)?.try_into().ok()?);
                let version = String::from_utf8(data.get(4..)?.to_vec()).ok()?;
                return Some(EngineSection { format, version });
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}
