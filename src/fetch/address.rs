//! Which IP addresses an image fetch may connect to: public unicast only.
//!
//! Everything an attacker could point the service at from outside (loopback, private and link-local
//! networks, cloud metadata endpoints, CGNAT, multicast, reserved and documentation ranges) is refused,
//! including the IPv6 forms that embed such an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused; for the log, never for the client.
pub(crate) type NonPublic = &'static str;

/// `Ok` when `ip` is a public unicast address the service may connect to.
pub(crate) fn check(ip: IpAddr) -> Result<(), NonPublic> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

/// IPv4 ranges that are not the public internet (IANA special-purpose registry, RFC 6890 and successors).
const V4_REFUSED: &[([u8; 4], u8, NonPublic)] = &[
    ([0, 0, 0, 0], 8, "this network / unspecified"),
    ([10, 0, 0, 0], 8, "private"),
    // Also Alibaba Cloud's metadata endpoint, 100.100.100.200.
    ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
    ([127, 0, 0, 0], 8, "loopback"),
    // Also the AWS, GCP and Azure metadata endpoint, 169.254.169.254.
    ([169, 254, 0, 0], 16, "link-local"),
    ([172, 16, 0, 0], 12, "private"),
    // Also Oracle Cloud's metadata endpoint, 192.0.0.192.
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    // Includes the limited broadcast address 255.255.255.255.
    ([240, 0, 0, 0], 4, "reserved / broadcast"),
];

fn check_v4(ip: Ipv4Addr) -> Result<(), NonPublic> {
    let bits = u32::from(ip);
    for (net, len, why) in V4_REFUSED {
        let mask = u32::MAX << (32 - u32::from(*len));
        if bits & mask == u32::from(Ipv4Addr::from(*net)) {
            return Err(why);
        }
    }
    Ok(())
}

fn check_v6(ip: Ipv6Addr) -> Result<(), NonPublic> {
    let s = ip.segments();
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, which covers :: and ::1): a resolver
    // never needs them to reach a public host, and some stacks connect to the embedded IPv4 address.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return Err("IPv4-mapped or IPv4-compatible IPv6");
    }
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address: it is as public as that one.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return check_v4(embedded_v4(s[6], s[7])).map_err(|_| "NAT64 form of a non-public IPv4 address");
    }
    // 6to4 (2002::/16) carries the IPv4 address of its relay in bits 16..48.
    if s[0] == 0x2002 {
        return check_v4(embedded_v4(s[1], s[2])).map_err(|_| "6to4 form of a non-public IPv4 address");
    }
    // Only global unicast (2000::/3) is public; this refuses loopback, ULA (fc00::/7, which holds AWS's
    // fd00:ec2::254 metadata endpoint), link-local, site-local, multicast, discard-only and local NAT64.
    if s[0] & 0xe000 != 0x2000 {
        return Err("not global unicast");
    }
    // 2001::/23 holds Teredo (which embeds an obfuscated IPv4 address), benchmarking and ORCHID.
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return Err("IETF protocol assignments (Teredo, benchmarking, ORCHID)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Err("documentation");
    }
    // 3fff::/20 (RFC 9637).
    if s[0] == 0x3fff && s[1] < 0x1000 {
        return Err("documentation");
    }
    Ok(())
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        check(text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))).is_err()
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(!refused(ip), "{ip} should be public");
        }
    }

    #[test]
    fn every_non_public_ipv4_range_is_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.192",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn every_non_public_ipv6_range_is_refused() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }
}
