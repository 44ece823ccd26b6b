//! `*` globs, used for route segments (`debug-*`) and cookie names (`sb-*-auth-token`).

use serde::{Deserialize, Serialize};

/// A pattern split on `*`: the first part is a prefix, the last a suffix, the rest must appear
/// in order between them. A `*` never matches `/` because it is only applied to one segment or
/// one cookie name.
///
/// # Examples
///
/// ```
/// use edgeguard_core::glob::Glob;
///
/// let g = Glob::new("sb-*-auth-token");
/// assert!(g.matches("sb-abc-auth-token"));
/// assert!(!g.matches("sb-abc-auth-token.0"));
/// assert_eq!((g.source(), g.literal_len()), ("sb-*-auth-token".to_owned(), 14));
/// assert!(Glob::new("debug-*").matches("debug-"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glob {
    pub parts: Vec<String>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob { parts: pattern.split('*').map(str::to_owned).collect() }
    }

    /// Number of literal bytes; more literal text = more specific.
    pub fn literal_len(&self) -> usize {
        self.parts.iter().map(String::len).sum()
    }

    pub fn matches(&self, text: &str) -> bool {
        let Some((first, rest)) = self.parts.split_first() else {
            return text.is_empty();
        };
        let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        for part in middle {
            match remaining.find(part.as_str()) {
                Some(at) => remaining = remaining.get(at.saturating_add(part.len())..).unwrap_or(""),
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(last.as_str())
    }

    /// The pattern as written.
    pub fn source(&self) -> String {
        self.parts.join("*")
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::Glob;

    #[test]
    fn globs() {
        let g = Glob::new("sb-*-auth-token");
        assert!(g.matches("sb-abc-auth-token"));
        assert!(g.matches("sb--auth-token"));
        assert!(!g.matches("sb-abc-auth-token.0"));
        assert!(!g.matches("xsb-abc-auth-token"));
        let g = Glob::new("sb-*-auth-token*");
        assert!(g.matches("sb-abc-auth-token.1"));
        assert!(Glob::new("debug-*").matches("debug-"));
        assert!(!Glob::new("a*a").matches("a"), "prefix and suffix must not overlap");
        assert!(Glob::new("a*b*c").matches("axxbyyc"));
        assert!(!Glob::new("a*b*c").matches("acb"));
        assert!(Glob::new("exact").matches("exact"));
        assert!(!Glob::new("exact").matches("exact2"));
    }
}
