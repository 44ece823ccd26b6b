//! Reading one value of a case file: its type, its range or spelling, and what it names
//! (headers, patterns, addresses, environments, lanes); each problem is reported where the
//! value is written.

use core::net::IpAddr;

use edgeguard_compiler::diagnostics;
use edgeguard_core::request::CfInput;
use toml::de::{DeTable, DeValue};

use crate::explain;
use crate::test::cases::{Lane, Matcher, Pattern};

use super::{Key, Parser, Value};

impl Parser {
    pub(super) fn table<'t, 'i>(&mut self, key: &str, value: &'t Value<'i>) -> Option<&'t DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.type_error(key, value.span(), "a table", other);
                None
            }
        }
    }

    pub(super) fn string(&mut self, key: &str, value: &Value<'_>) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.type_error(key, value.span(), "a string", other);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.type_error(key, value.span(), "true or false", other);
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub(super) fn number(&mut self, key: &str, value: &Value<'_>, min: u64, max: u64) -> Option<u64> {
        let DeValue::Integer(i) = value.get_ref() else {
            self.type_error(key, value.span(), "a whole number", value.get_ref());
            return None;
        };
        match u64::from_str_radix(i.as_str(), i.radix()).ok().filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.error(value.span(), format!("`{key}` must be between {min} and {max}; got {}", i.as_str()));
                None
            }
        }
    }

    /// One of `choices`, with a did-you-mean.
    pub(super) fn choice(&mut self, key: &str, value: &Value<'_>, choices: &[&str]) -> Option<String> {
        let s = self.string(key, value)?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let help = match diagnostics::suggest(&s, choices.iter().copied()) {
            Some(best) => format!("did you mean \"{best}\"?"),
            None => format!("one of: {}", choices.join(", ")),
        };
        self.error_help(value.span(), format!("`{key}` cannot be \"{s}\""), help);
        None
    }

    /// A string, or `"none"` for an expected `null`.
    pub(super) fn nullable_string(&mut self, key: &str, value: &Value<'_>) -> Option<Option<String>> {
        let s = self.string(key, value)?;
        Some(if s == "none" { None } else { Some(s) })
    }

    pub(super) fn header_name(&mut self, key: &Key<'_>) -> Option<String> {
        let name = key.get_ref().as_ref();
        if name.is_empty() || !name.bytes().all(explain::is_tchar) {
            self.error(key.span(), format!("`{name}` is not a valid header name"));
            return None;
        }
        Some(name.to_owned())
    }

    /// `{ name = "value" }`: header names (kept as written) and values (strings or numbers).
    pub(super) fn header_table(&mut self, key: &str, value: &Value<'_>) -> Vec<(String, String)> {
        let Some(table) = self.table(key, value) else { return Vec::new() };
        let mut out = Vec::with_capacity(table.len());
        for (name, v) in table {
            let Some(name) = self.header_name(name) else { continue };
            let text = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) => i.as_str().to_owned(),
                other => {
                    self.type_error(&format!("{key}.{name}"), v.span(), "a string", other);
                    continue;
                }
            };
            out.push((name, text));
        }
        out
    }

    /// `{ name = "regex" }`, names lowercased.
    pub(super) fn pattern_table(&mut self, key: &str, value: &Value<'_>) -> Vec<(String, Pattern)> {
        let Some(table) = self.table(key, value) else { return Vec::new() };
        let mut out = Vec::with_capacity(table.len());
        for (name, v) in table {
            let Some(name) = self.header_name(name) else { continue };
            let Some(source) = self.string(&format!("{key}.{name}"), v) else { continue };
            if let Some(matcher) = self.patterns.get(&source) {
                out.push((name.to_ascii_lowercase(), Pattern { matcher: matcher.clone(), source }));
                continue;
            }
            // Outside a class, only these are special (`#` needs the `x` flag, which needs `(`).
            let compiled = if !source.contains(['\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$']) {
                Ok(Matcher::Literal)
            } else {
                regex_lite::Regex::new(&source).map(Matcher::Regex)
            };
            match compiled {
                Ok(matcher) => {
                    self.patterns.insert(source.clone(), matcher.clone());
                    out.push((name.to_ascii_lowercase(), Pattern { source, matcher }));
                }
                Err(e) => self.error_help(
                    v.span(),
                    format!("`{key}.{name}` is not a valid regular expression: {e}"),
                    "the syntax is regex-lite's (https://docs.rs/regex-lite); to match `.`, `(`, `*`, `?`, `+` or `|` literally, escape it: '\\.' in a '...' string, \"\\\\.\" in a \"...\" string",
                ),
            }
        }
        out
    }

    /// `["name", …]`, lowercased.
    pub(super) fn name_list(&mut self, key: &str, value: &Value<'_>) -> Vec<String> {
        let DeValue::Array(items) = value.get_ref() else {
            self.type_error(key, value.span(), "an array of header names", value.get_ref());
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            let Some(name) = self.string(key, item) else { continue };
            if name.is_empty() || !name.bytes().all(explain::is_tchar) {
                self.error(item.span(), format!("`{name}` is not a valid header name"));
                continue;
            }
            out.push(name.to_ascii_lowercase());
        }
        out
    }

    pub(super) fn client_ip(&mut self, value: &Value<'_>) -> Option<IpAddr> {
        let s = self.string("client_ip", value)?;
        match s.trim().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error_help(value.span(), format!("`client_ip` \"{s}\" is not an IP address"), "write an IPv4 or IPv6 address, e.g. \"203.0.113.7\" or \"2001:db8::7\"");
                None
            }
        }
    }

    pub(super) fn env(&mut self, value: &Value<'_>) -> Option<String> {
        let s = self.string("env", value)?;
        if s.trim().is_empty() {
            self.error(value.span(), "`env` cannot be empty");
            return None;
        }
        Some(s)
    }

    pub(super) fn at(&mut self, value: &Value<'_>) -> Option<u64> {
        self.number("at", value, 0, u64::MAX / 1_000_000_000)
    }

    pub(super) fn lane(&mut self, value: &Value<'_>) -> Option<Lane> {
        match self.choice("lane", value, &["active", "canary"])?.as_str() {
            "canary" => Some(Lane::Canary),
            _ => Some(Lane::Active),
        }
    }

    /// A `request.cf` stand-in key (`country`, `continent`, `asn`, `verified_bot`,
    /// `verified_bot_category`) into `cf`; `false` for any other key.
    pub(super) fn cf_key(&mut self, key: &str, value: &Value<'_>, cf: &mut CfInput) -> bool {
        match key {
            "country" => {
                if let Some(c) = self.string("country", value) {
                    let upper = c.trim().to_ascii_uppercase();
                    if upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        cf.country = Some(upper);
                    } else {
                        self.error_help(value.span(), format!("`country` \"{c}\" is not a two-letter code"), "write the ISO 3166-1 alpha-2 code Cloudflare reports, e.g. \"DE\"");
                    }
                }
            }
            "continent" => {
                if let Some(c) = self.choice("continent", value, &["AF", "AN", "AS", "EU", "NA", "OC", "SA"]) {
                    cf.continent = Some(c);
                }
            }
            "asn" => cf.asn = self.number("asn", value, 1, u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok()),
            "verified_bot" => cf.verified_bot = self.boolean("verified_bot", value).unwrap_or(false),
            "verified_bot_category" => cf.verified_bot_category = self.string("verified_bot_category", value),
            _ => return false,
        }
        true
    }
}
