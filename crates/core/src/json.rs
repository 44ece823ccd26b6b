//! JSON objects written field by field, for the outputs made on every request: the worker's
//! decision wire and the request's log line.
//!
//! serde_json escapes strings one byte at a time through a lookup table, which in wasm cost
//! more than the decision itself. Nearly every value here (paths, hosts, header values, ids)
//! needs no escaping at all, so a string is first checked eight bytes at a time
//! (crate::scan) and, when clean, copied as is; quotes and backslashes get their backslash
//! here, and a string with a control byte goes through serde_json's own escaping. The types keep
//! their `#[derive(Serialize)]`, and property tests hold each writer to serde_json's output
//! for the same value, byte for byte.

/// A JSON object under construction. Keys are `'static` names written as they are: callers
/// pass plain ASCII names that need no escaping.
pub struct ObjectWriter {
    out: String,
    first: bool,
}

impl ObjectWriter {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        ObjectWriter { out, first: true }
    }

    fn key(&mut self, key: &'static str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    pub fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        push_str(&mut self.out, value);
    }

    /// A string, or `null` for `None`.
    pub fn str_or_null(&mut self, key: &'static str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(value) => push_str(&mut self.out, value),
            None => self.out.push_str("null"),
        }
    }

    /// A string field left out for `None` (serde's `skip_serializing_if = "Option::is_none"`).
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    pub fn u64(&mut self, key: &'static str, value: u64) {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    /// A number field left out for `None`.
    pub fn opt_u64(&mut self, key: &'static str, value: Option<u64>) {
        if let Some(value) = value {
            self.u64(key, value);
        }
    }

    pub fn bool(&mut self, key: &'static str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// A value that is JSON text already (serialized elsewhere).
    pub fn raw(&mut self, key: &'static str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    /// An array of strings.
    pub fn str_array<'a>(&mut self, key: &'static str, values: impl IntoIterator<Item = &'a str>) {
        self.key(key);
        self.out.push('[');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_str(&mut self.out, value);
        }
        self.out.push(']');
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// `value` as a JSON string literal, appended to `out` exactly as serde_json writes it.
pub fn push_str(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    if !needs_escape(bytes) {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else if crate::scan::any_below_or_in(bytes, 0x20, b"") {
        // A control byte: serde_json's escaping (\n, \t, \u00XX …) for the rare value with one.
        match serde_json::to_string(value) {
            Ok(escaped) => out.push_str(&escaped),
            Err(_) => out.push_str("\"\""),
        }
    } else {
        // Only quotes and backslashes (`Forwarded: host="…"`, a RateLimit item's name): each
        // gets a backslash before it, the runs between are copied as they are.
        out.push('"');
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' || b == b'\\' {
                out.push_str(value.get(run..i).unwrap_or_default());
                out.push('\\');
                run = i;
            }
        }
        out.push_str(value.get(run..).unwrap_or_default());
        out.push('"');
    }
}

/// Whether any byte must be escaped in a JSON string: `"`, `\` or a control byte below 0x20.
fn needs_escape(bytes: &[u8]) -> bool {
    crate::scan::any_below_or_in(bytes, 0x20, b"\"\\")
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    #[test]
    fn escapes_what_json_requires() {
        let cases = ["", "plain", "a\"b", "back\\slash", "tab\there", "nul\0", "ünïcödé ✓", "\u{7f}del", "exactly8", "sixteen-bytes-ok", "sixteen-bytes-o\""];
        for case in cases {
            let mut out = String::new();
            push_str(&mut out, case);
            assert_eq!(out, serde_json::to_string(case).unwrap_or_default(), "{case:?}");
        }
    }

    #[test]
    fn objects() {
        let mut w = ObjectWriter::with_capacity(8);
        w.str("a", "x");
        w.opt_str("skipped", None);
        w.u64("n", 42);
        w.bool("t", true);
        w.str_or_null("z", None);
        w.str_array("f", ["k", "v\n"]);
        w.raw("g", "{\"token\":1}");
        assert_eq!(w.finish(), r#"{"a":"x","n":42,"t":true,"z":null,"f":["k","v\n"],"g":{"token":1}}"#);
        assert_eq!(ObjectWriter::with_capacity(0).finish(), "{}");
    }

    // proptest needs threads, failure files and OS randomness: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        /// Byte for byte what serde_json writes, for any string (control bytes, quotes and
        /// backslashes included, at every position of an eight-byte word).
        #[test]
        fn push_str_is_serde_json(value in "[ -~\\x00-\\x1f\"\\\\é€𝄞]{0,40}") {
            let mut out = String::new();
            push_str(&mut out, &value);
            prop_assert_eq!(out, serde_json::to_string(&value).unwrap_or_default());
        }
    }
}
