//! What a log line, event or data point may carry of a client and a path: the address as
//! `observe.client_ip` allows, text cut on a character boundary.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bundle::IpDetail;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// The client address as `observe.client_ip` allows it to be written.
pub fn client_ip_text(ip: Option<IpAddr>, detail: IpDetail) -> Option<String> {
    match detail {
        IpDetail::Omit => None,
        IpDetail::Full => ip.map(crate::engine::ip_text),
        IpDetail::Truncate => ip.map(|ip| crate::engine::ip_text(truncate_ip(ip))),
    }
}

/// IPv4 to its /24, IPv6 to its /48 (an IPv4-mapped IPv6 address as the IPv4 one).
pub fn truncate_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => truncate_ip(IpAddr::V4(v4)),
            None => {
                let [a, b, c, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn ip_truncation() {
        let t = |s: &str, m| client_ip_text(s.parse().ok(), m);
        assert_eq!(t("198.51.100.23", IpDetail::Truncate).as_deref(), Some("198.51.100.0"));
        assert_eq!(t("2001:db8:abcd:12::1", IpDetail::Truncate).as_deref(), Some("2001:db8:abcd::"));
        assert_eq!(t("::ffff:198.51.100.23", IpDetail::Truncate).as_deref(), Some("198.51.100.0"));
        assert_eq!(t("198.51.100.23", IpDetail::Full).as_deref(), Some("198.51.100.23"));
        assert_eq!(t("198.51.100.23", IpDetail::Omit), None);
        assert_eq!(client_ip_text(None, IpDetail::Full), None);
    }

    // proptest runs cases on threads and persists failures to files: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// Addresses read as `Display` writes them, IPv4 and IPv6.
        #[test]
        fn ip_text_is_display(v4 in proptest::prelude::any::<[u8; 4]>(), v6 in proptest::prelude::any::<[u16; 8]>()) {
            let a = IpAddr::V4(Ipv4Addr::from(v4));
            let b = IpAddr::V6(Ipv6Addr::from(v6));
            proptest::prop_assert_eq!(crate::engine::ip_text(a), a.to_string());
            proptest::prop_assert_eq!(crate::engine::ip_text(b), b.to_string());
        }
    }
}
