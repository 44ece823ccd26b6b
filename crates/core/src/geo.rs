//! Stage 6b: where a request comes from — country, continent and network (ASN) as Cloudflare
//! reports them in `request.cf` — for a route's `geo_allow` / `geo_deny` and a limit's `geo`.
//!
//! Only Cloudflare's facts are read, never a header a client could send. Outside Cloudflare
//! (`wrangler dev`, `explain` without `--country`) there are none, and a set's answer is
//! "unknown": `geo_allow` then refuses (nothing unverified is trusted, as `ip_allow` refuses a
//! request without an address), `geo_deny` lets it through (nothing proves it is from a denied
//! place), and a limit with a `geo` condition counts it (the stricter reading).

use serde::{Deserialize, Serialize};

use crate::request::CfFacts;

/// Countries, continents and networks; a request is in the set when any one of them matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoSet {
    /// ISO 3166-1 alpha-2 codes, upper case.
    pub countries: Vec<[u8; 2]>,
    /// Cloudflare continent codes (`AF AN AS EU NA OC SA`), upper case.
    pub continents: Vec<[u8; 2]>,
    pub asns: Vec<u32>,
}

fn code(text: Option<&str>) -> Option<[u8; 2]> {
    let b = text?.as_bytes();
    match b {
        [a, c] => Some([a.to_ascii_uppercase(), c.to_ascii_uppercase()]),
        _ => None,
    }
}

impl GeoSet {
    pub fn is_empty(&self) -> bool {
        self.countries.is_empty() && self.continents.is_empty() && self.asns.is_empty()
    }

    /// `Some(true)` when a fact matches, `Some(false)` when the facts the set asks about are
    /// known and none matches, `None` when none of them is known.
    pub fn contains(&self, cf: &CfFacts) -> Option<bool> {
        let mut known = false;
        if !self.countries.is_empty()
            && let Some(c) = code(cf.country)
        {
            known = true;
            if self.countries.contains(&c) {
                return Some(true);
            }
        }
        if !self.continents.is_empty()
            && let Some(c) = code(cf.continent)
        {
            known = true;
            if self.continents.contains(&c) {
                return Some(true);
            }
        }
        if !self.asns.is_empty()
            && let Some(asn) = cf.asn
        {
            known = true;
            if self.asns.contains(&asn) {
                return Some(true);
            }
        }
        known.then_some(false)
    }

    /// The set as a policy writes it, for details: `countries US, CA; ASNs 13335`.
    pub fn describe(&self) -> String {
        let codes = |list: &[[u8; 2]]| list.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.countries.is_empty() {
            parts.push(format!("countries {}", codes(&self.countries)));
        }
        if !self.continents.is_empty() {
            parts.push(format!("continents {}", codes(&self.continents)));
        }
        if !self.asns.is_empty() {
            parts.push(format!("ASNs {}", self.asns.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")));
        }
        parts.join("; ")
    }
}

/// A route's geo rules: `Err(detail)` for a 403 `geo_denied`.
pub fn check(allow: Option<&GeoSet>, deny: Option<&GeoSet>, cf: &CfFacts) -> Result<(), String> {
    if let Some(set) = allow.filter(|s| !s.is_empty()) {
        match set.contains(cf) {
            Some(true) => {}
            Some(false) => return Err(format!("this route serves only requests from {} (geo_allow)", set.describe())),
            None => {
                return Err(format!(
                    "this route serves only requests from {} (geo_allow) and the request carries no location from Cloudflare",
                    set.describe()
                ));
            }
        }
    }
    if let Some(set) = deny.filter(|s| !s.is_empty())
        && set.contains(cf) == Some(true)
    {
        return Err(format!("this route refuses requests from {} (geo_deny)", set.describe()));
    }
    Ok(())
}

/// Whether a limit with a `geo` condition counts this request: yes unless the location is
/// known to be outside the set.
pub fn limit_applies(set: Option<&GeoSet>, cf: &CfFacts) -> bool {
    set.is_none_or(|s| s.is_empty() || s.contains(cf) != Some(false))
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    fn set() -> GeoSet {
        GeoSet { countries: vec![*b"US", *b"CA"], continents: vec![*b"EU"], asns: vec![13335] }
    }

    #[test]
    fn membership() {
        let s = set();
        let cf = |country, continent, asn| CfFacts { country, continent, asn, ..CfFacts::NONE };
        assert_eq!(s.contains(&cf(Some("US"), Some("NA"), None)), Some(true));
        assert_eq!(s.contains(&cf(Some("us"), None, None)), Some(true));
        assert_eq!(s.contains(&cf(Some("DE"), Some("EU"), None)), Some(true));
        assert_eq!(s.contains(&cf(Some("BR"), Some("SA"), Some(1))), Some(false));
        assert_eq!(s.contains(&cf(Some("BR"), Some("SA"), Some(13335))), Some(true));
        assert_eq!(s.contains(&CfFacts::NONE), None);
        let countries_only = GeoSet { countries: vec![*b"US"], ..GeoSet::default() };
        assert_eq!(countries_only.contains(&cf(None, Some("NA"), Some(7))), None, "no country: unknown, whatever else is known");
    }

    #[test]
    fn route_rules_and_limits() {
        let s = set();
        let br = CfFacts { country: Some("BR"), ..CfFacts::NONE };
        let us = CfFacts { country: Some("US"), ..CfFacts::NONE };
        assert!(check(Some(&s), None, &us).is_ok());
        assert!(check(Some(&s), None, &br).unwrap_err().contains("geo_allow"));
        assert!(check(Some(&s), None, &CfFacts::NONE).unwrap_err().contains("no location"));
        assert!(check(None, Some(&s), &us).unwrap_err().contains("geo_deny"));
        assert!(check(None, Some(&s), &br).is_ok());
        assert!(check(None, Some(&s), &CfFacts::NONE).is_ok());
        assert!(limit_applies(Some(&s), &us));
        assert!(!limit_applies(Some(&s), &br));
        assert!(limit_applies(Some(&s), &CfFacts::NONE));
        assert!(limit_applies(None, &br));
        assert_eq!(s.describe(), "countries US, CA; continents EU; ASNs 13335");
    }
}
