//! The one grammar of a node's address: `host:port`, where the host is a
//! DNS name, an IPv4 address or a bracketed IPv6 address, and nothing else.
//!
//! ```text
//! address  = host ":" port
//! host     = dns-name / ipv4 / "[" ipv6 "]"
//! dns-name = label *("." label)           at most 253 characters
//! label    = 1*63(a-z / 0-9 / "-")        not starting or ending with "-"
//!                                         the last label not all digits
//! ipv4     = dotted quad, no leading zeros (as Rust's Ipv4Addr reads it)
//! ipv6     = RFC 5952 form (as Rust's Ipv6Addr writes it), no zone
//! port     = 1..65535 in decimal, no sign, no leading zeros
//! ```
//!
//! Every address has exactly one spelling (lowercase, canonical IP forms),
//! so two entries that differ only in spelling cannot pose as two nodes,
//! and no address can carry a path, a query, a fragment, user information
//! or whitespace into the URLs nodes and seeds build from it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 255;
/// Longest DNS name, in bytes.
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;

/// A node's host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercase.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
}

/// A node's address: host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    /// The host.
    pub host: Host,
    /// The port, 1..=65535.
    pub port: u16,
}

/// Why a string is not a node address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Longer than [`MAX_ADDRESS_LEN`].
    #[error("is longer than {MAX_ADDRESS_LEN} bytes")]
    TooLong,
    /// No `:port` at the end.
    #[error("has no :port")]
    NoPort,
    /// The port is not 1..=65535 in plain decimal.
    #[error("has a port that is not 1-65535 in plain decimal")]
    BadPort,
    /// The host is not a DNS name, an IPv4 address or a bracketed IPv6
    /// address in canonical form.
    #[error("has a host that is not a DNS name, an IPv4 address or a bracketed IPv6 address ({0})")]
    BadHost(&'static str),
}

impl Host {
    /// The IP address, if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Name(_) => None,
            Self::V4(v4) => Some(IpAddr::V4(*v4)),
            Self::V6(v6) => Some(IpAddr::V6(*v6)),
        }
    }
}

impl NodeAddress {
    /// The IP address, if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.ip()
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6(v6) => write!(f, "[{v6}]"),
        }
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for NodeAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong);
        }
        let (host, port) = s.rsplit_once(':').ok_or(AddressError::NoPort)?;
        let port = parse_port(port)?;
        let host = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(AddressError::BadHost("an unclosed bracket"))?;
            let v6: Ipv6Addr = inner
                .parse()
                .map_err(|_| AddressError::BadHost("not an IPv6 address"))?;
            if v6.to_string() != inner {
                return Err(AddressError::BadHost("an IPv6 address not in its canonical form"));
            }
            Host::V6(v6)
        } else if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            // All digits and dots: an IPv4 address or nothing (a name's
            // last label may not be all digits).
            Host::V4(host.parse().map_err(|_| AddressError::BadHost("not an IPv4 address"))?)
        } else {
            check_name(host)?;
            Host::Name(host.to_owned())
        };
        Ok(Self { host, port })
    }
}

fn parse_port(port: &str) -> Result<u16, AddressError> {
    let plain = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0');
    if !plain {
        return Err(AddressError::BadPort);
    }
    port.parse::<u16>().map_err(|_| AddressError::BadPort)
}

fn check_name(name: &str) -> Result<(), AddressError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(AddressError::BadHost("a name of 1 to 253 characters"));
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(AddressError::BadHost("a label of 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AddressError::BadHost("only a-z, 0-9, '-' and '.' in a name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::BadHost("a label starting or ending with '-'"));
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::BadHost("an all-digit last label"));
    }
    Ok(())
}

/// Whether an IP is one a public network must not list: loopback,
/// private, link-local, unspecified, multicast, documentation or other
/// special-purpose ranges (seeds refuse them unless told they serve a
/// local network).
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // 100.64.0.0/10 (carrier-grade NAT) and 240.0.0.0/4 (reserved).
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32
                // documentation.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || v6.to_ipv4_mapped().is_some_and(|v4| is_non_public(IpAddr::V4(v4)))
        }
    }
}

/// The network an address stands for, as the diversity rules count it:
/// the /16 of an IPv4 address, the /32 of an IPv6 address, or the host
/// name itself. No two relays of a path, and no two members of a swarm,
/// share one.
pub fn subnet(address: &str) -> String {
    match address.parse::<std::net::SocketAddr>() {
        Ok(std::net::SocketAddr::V4(a)) => {
            let o = a.ip().octets();
            format!("{}.{}", o[0], o[1])
        }
        Ok(std::net::SocketAddr::V6(a)) => {
            let s = a.ip().segments();
            format!("{:x}:{:x}", s[0], s[1])
        }
        Err(_) => address.rsplit_once(':').map_or(address, |(h, _)| h).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_names_and_ips_in_one_spelling() {
        for ok in [
            "seed1.example.org:22020",
            "a:1",
            "x-1.y2.example:65535",
            "127.0.0.1:22021",
            "[::1]:80",
            "[2001:db8::7]:443",
            "[::ffff:1.2.3.4]:9",
        ] {
            let parsed: NodeAddress = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(parsed.to_string(), ok);
        }
        assert_eq!(
            "10.1.2.3:80".parse::<NodeAddress>().unwrap().ip(),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "evil.example/x#:80",
            "user@host:80",
            "host:80/path",
            "host?q:80",
            "a b:80",
            " host:80",
            "host:80 ",
            "Host.Example:80",
            "host.:80",
            ".host:80",
            "ho..st:80",
            "-host:80",
            "host-:80",
            "host_name:80",
            "1.2.3:80",
            "010.0.0.1:80",
            "256.1.1.1:80",
            "1.2.3.4.5:80",
            "example.123:80",
            "::1:80",
            "[::1:80",
            "[0:0::1]:80",
            "[2001:DB8::1]:80",
            "[fe80::1%eth0]:80",
            "host",
            "host:",
            "host:0",
            "host:080",
            "host:+80",
            "host:65536",
            ":80",
            "[]:80",
            "hôst:80",
        ] {
            assert!(bad.parse::<NodeAddress>().is_err(), "{bad:?} accepted");
        }
        let long = format!("{}.example:80", "a".repeat(64));
        assert!(long.parse::<NodeAddress>().is_err());
        let too_long = format!("{}:80", ["abc"; 70].join("."));
        assert!(too_long.parse::<NodeAddress>().is_err());
    }

    #[test]
    fn non_public_ranges() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "203.0.114.1", "2a00:1450::1", "100.128.0.1"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn any_valid_address_reads_back_as_itself(
            labels in prop::collection::vec(label(), 1..5),
            tld in "[a-z][a-z0-9]{0,5}",
            port in 1u16..,
            v4 in any::<u32>(),
            v6 in any::<u128>(),
            kind in 0u8..3,
        ) {
            let host = match kind {
                0 => Host::Name(format!("{}.{tld}", labels.join("."))),
                1 => Host::V4(Ipv4Addr::from(v4)),
                _ => Host::V6(Ipv6Addr::from(v6)),
            };
            let address = NodeAddress { host, port };
            let text = address.to_string();
            prop_assert_eq!(text.parse::<NodeAddress>(), Ok(address));
        }

        #[test]
        fn no_string_with_a_url_delimiter_parses(
            before in "[a-z0-9.]{0,10}",
            delimiter in "[/#?@ %\\\\]",
            after in "[a-z0-9.]{0,10}",
            port in 1u16..,
        ) {
            let text = format!("{before}{delimiter}{after}:{port}");
            prop_assert!(text.parse::<NodeAddress>().is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(text in any::<String>()) {
            if let Ok(address) = text.parse::<NodeAddress>() {
                prop_assert_eq!(address.to_string(), text);
            }
        }
    }
}
