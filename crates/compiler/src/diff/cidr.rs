//! IP blocks compared by the addresses they cover, with core's [`Cidr`]: contained blocks and
//! merged siblings make no difference.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use edgeguard_core::cidr::Cidr;


/// A block's network address as core matches it (IPv4 blocks are IPv4-mapped IPv6).
fn network_ip(c: &Cidr) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(c.network))
}

/// Whether `outer` covers every address of `inner`.
fn covers(outer: &Cidr, inner: &Cidr) -> bool {
    outer.prefix <= inner.prefix && outer.contains(network_ip(inner))
}

/// The block one bit shorter that holds `c` (`None` for the whole address space).
fn parent(c: &Cidr) -> Option<Cidr> {
    Cidr::new(network_ip(c), c.prefix.checked_sub(1)?)
}

/// The smallest list of blocks covering the same addresses, sorted: contained blocks dropped,
/// sibling blocks merged. Two lists cover the same addresses exactly when these are equal.
pub(super) fn canonical_cidrs(list: &[Cidr]) -> Vec<Cidr> {
    // Cidr::new clears host bits a bundle read from a file might carry.
    let mut sorted: Vec<Cidr> = list.iter().filter_map(|c| Cidr::new(network_ip(c), c.prefix.min(128))).collect();
    sorted.sort_by_key(|c| (c.network, c.prefix));
    let mut out: Vec<Cidr> = Vec::with_capacity(sorted.len());
    for c in sorted {
        if out.last().is_some_and(|l| covers(l, &c)) {
            continue;
        }
        out.push(c);
        // Two halves of one block (sorted, so `a` is the lower) become that block.
        while let [.., a, b] = out.as_slice() {
            let merged = parent(a).filter(|p| a.prefix == b.prefix && parent(b) == Some(*p));
            let Some(merged) = merged else { break };
            out.truncate(out.len().saturating_sub(2));
            out.push(merged);
        }
    }
    out
}

/// Blocks of `list` not covered by `by` (both canonical).
pub(super) fn uncovered(list: &[Cidr], by: &[Cidr]) -> Vec<Cidr> {
    list.iter().filter(|c| !by.iter().any(|b| covers(b, c))).copied().collect()
}

pub(super) fn cidr_text(c: &Cidr) -> String {
    let v4_mapped = c.prefix >= 96 && c.network >> 32 == 0xffff;
    if v4_mapped {
        let ip = Ipv4Addr::from(u32::try_from(c.network & 0xffff_ffff).unwrap_or(0));
        let p = c.prefix.saturating_sub(96);
        if p == 32 { ip.to_string() } else { format!("{ip}/{p}") }
    } else {
        let ip = Ipv6Addr::from(c.network);
        if c.prefix >= 128 { ip.to_string() } else { format!("{ip}/{}", c.prefix) }
    }
}

pub(super) fn cidrs_text(list: &[Cidr]) -> Option<String> {
    (!list.is_empty()).then(|| list.iter().map(cidr_text).collect::<Vec<_>>().join(", "))
}

