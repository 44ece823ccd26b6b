//! CIDR blocks in a form that matches without allocation. Parsing and validation live in the
//! compiler; the engine only tests membership.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 network. IPv4 addresses are held as IPv4-mapped IPv6 so one comparison
/// serves both families.
///
/// # Examples
///
/// ```
/// use core::net::IpAddr;
/// use edgeguard_core::cidr::Cidr;
///
/// let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
/// let net = Cidr::new(ip("203.0.113.77"), 24).expect("a prefix IPv4 has");
/// assert!(net.contains(ip("203.0.113.1")));
/// assert!(net.contains(ip("::ffff:203.0.113.200")), "an IPv4-mapped IPv6 address is the IPv4 one");
/// assert!(!net.contains(ip("203.0.114.1")));
/// assert!(Cidr::new(ip("2001:db8::"), 32).is_some_and(|n| n.contains(ip("2001:db8:ffff::1"))));
/// assert_eq!(Cidr::new(ip("203.0.113.0"), 33), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub network: u128,
    /// Prefix length in the 128-bit space (IPv4 /24 is stored as /120).
    pub prefix: u8,
}

/// The 128-bit form of an address (IPv4 mapped into `::ffff:0:0/96`).
pub fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

impl Cidr {
    /// Build from an address and its family's prefix length; host bits are cleared.
    pub fn new(ip: IpAddr, prefix: u8) -> Option<Cidr> {
        let prefix = match ip {
            IpAddr::V4(_) if prefix <= 32 => prefix.checked_add(96)?,
            IpAddr::V6(_) if prefix <= 128 => prefix,
            _ => return None,
        };
        let mask = mask(prefix);
        Some(Cidr { network: ip_bits(ip) & mask, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip_bits(ip) & mask(self.prefix) == self.network
    }
}

fn mask(prefix: u8) -> u128 {
    match u32::from(prefix) {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX.checked_shl(128u32.saturating_sub(p)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn v4_and_v6_membership() {
        let net = Cidr::new(ip("203.0.113.0"), 24);
        assert!(net.is_some_and(|n| n.contains(ip("203.0.113.77"))));
        assert!(net.is_some_and(|n| !n.contains(ip("203.0.114.1"))));
        assert!(net.is_some_and(|n| n.contains(ip("::ffff:203.0.113.9"))), "mapped v4 matches");
        let v6 = Cidr::new(ip("2001:db8::"), 32);
        assert!(v6.is_some_and(|n| n.contains(ip("2001:db8:1::5"))));
        assert!(v6.is_some_and(|n| !n.contains(ip("2001:db9::1"))));
        assert!(Cidr::new(ip("0.0.0.0"), 0).is_some_and(|n| n.contains(ip("8.8.8.8"))));
        assert!(Cidr::new(ip("0.0.0.0"), 0).is_some_and(|n| !n.contains(ip("2001:db8::1"))));
        assert!(Cidr::new(ip("10.0.0.0"), 33).is_none());
    }
}
