//! `geo_allow`, `geo_deny` (routes) and a limit's `geo`: ISO 3166-1 alpha-2 countries, Cloudflare
//! continent codes and ASNs, checked here so the engine compares two bytes or a number.

use edgeguard_core::geo::GeoSet;

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::GeoDef;
use crate::{Ctx, codes};

/// Cloudflare's `request.cf.continent` values.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// ISO 3166-1 alpha-2, officially assigned codes (249), plus Cloudflare's `T1` (Tor) and `XX`
/// (unknown).
pub const COUNTRIES: [&str; 251] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL",
    "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV",
    "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD",
    "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM",
    "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK",
    "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW",
    "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR",
    "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY",
    "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW", "T1", "XX",
];

/// Common mistakes for which edit distance gives no useful hint (every two-letter string is one
/// or two edits from dozens of codes).
const ALIASES: [(&str, &str); 6] = [("UK", "GB"), ("EN", "GB"), ("EL", "GR"), ("USA", "US"), ("CAN", "CA"), ("DEU", "DE")];

fn code(text: &str) -> Option<[u8; 2]> {
    match text.as_bytes() {
        [a, b] => Some([*a, *b]),
        _ => None,
    }
}

/// A geo table, checked; `at` names it in messages (`geo_allow`, `limits.api.geo`).
pub fn compile(ctx: &mut Ctx, def: &GeoDef, at: &str) -> GeoSet {
    let mut set = GeoSet::default();
    for c in def.countries.iter().flatten() {
        let upper = c.get_ref().trim().to_ascii_uppercase();
        match code(&upper).filter(|_| COUNTRIES.contains(&upper.as_str())) {
            Some(code) => {
                if !set.countries.contains(&code) {
                    set.countries.push(code);
                }
            }
            None => {
                let mut d = Diagnostic::error(codes::COUNTRY, c.span(), format!("`{}` is not an ISO 3166-1 alpha-2 country code", c.get_ref()));
                let alias = ALIASES.iter().find(|(a, _)| *a == upper).map(|(_, to)| *to);
                d = match alias.or_else(|| (upper.len() > 2).then(|| suggest(&upper, COUNTRIES.iter().copied())).flatten()) {
                    Some(best) => d.help(format!("did you mean \"{best}\"? Cloudflare reports countries as ISO 3166-1 alpha-2 codes")),
                    None => d.help("write a two-letter ISO 3166-1 code as Cloudflare reports it, e.g. \"US\", \"GB\", \"DE\""),
                };
                ctx.push(d);
            }
        }
    }
    for c in def.continents.iter().flatten() {
        let upper = c.get_ref().trim().to_ascii_uppercase();
        match code(&upper).filter(|_| CONTINENTS.contains(&upper.as_str())) {
            Some(code) => {
                if !set.continents.contains(&code) {
                    set.continents.push(code);
                }
            }
            None => {
                let named = [("EUROPE", "EU"), ("AFRICA", "AF"), ("ASIA", "AS"), ("ANTARCTICA", "AN"), ("OCEANIA", "OC"), ("NORTH AMERICA", "NA"), ("SOUTH AMERICA", "SA")];
                let hint = named.iter().find(|(n, _)| *n == upper).map(|(_, c)| *c);
                let mut d = Diagnostic::error(codes::CONTINENT, c.span(), format!("`{}` is not a continent code", c.get_ref()));
                d = match hint {
                    Some(best) => d.help(format!("did you mean \"{best}\"? continents: AF, AN, AS, EU, NA, OC, SA")),
                    None => d.help("continents are Cloudflare's codes: AF, AN, AS, EU, NA, OC, SA"),
                };
                ctx.push(d);
            }
        }
    }
    for a in def.asns.iter().flatten() {
        match u32::try_from(*a.get_ref()) {
            Ok(n) if n > 0 => {
                if !set.asns.contains(&n) {
                    set.asns.push(n);
                }
            }
            _ => ctx.push(
                Diagnostic::error(codes::ASN, a.span(), format!("{} is not an autonomous system number", a.get_ref()))
                    .help("write the number without `AS`, between 1 and 4294967295, e.g. 13335"),
            ),
        }
    }
    let empty = def.countries.as_ref().is_none_or(Vec::is_empty) && def.continents.as_ref().is_none_or(Vec::is_empty) && def.asns.as_ref().is_none_or(Vec::is_empty);
    if empty {
        let span = def.countries.as_ref().or(def.continents.as_ref()).and_then(|v| v.first()).map_or(0..0, |v| v.span());
        ctx.push(
            Diagnostic::warning(codes::GEO_EMPTY, span, format!("`{at}` lists no country, continent or ASN, so it does nothing"))
                .help("list at least one of countries, continents or asns, or remove it"),
        );
    }
    set
}
