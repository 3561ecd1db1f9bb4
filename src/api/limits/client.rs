//! The client address a request is rate limited on (docs/api.md, "Rate limits").
//!
//! It is the TCP peer, unless the peer is in `api.trusted_proxies`: then the hops that the
//! header named by `api.client_address_header` reports (`X-Forwarded-For`, or `Forwarded`
//! of RFC 7239) are walked from the right, and the first address that is not itself a
//! trusted proxy is the client; when every hop is trusted, the leftmost one is. An
//! `unknown` or obfuscated identifier (`_hidden`), or anything else that is not an address,
//! ends the walk: the request counts against the trusted proxy that reported it, never
//! against an address written further left, which the client itself may have written. The
//! headers of a peer that is not a trusted proxy are never read, so a client cannot choose
//! its own bucket by sending them.

use axum::http::{HeaderMap, HeaderName, header};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

/// An entry of `api.trusted_proxies`: one address (`10.0.0.7`, `::1`) or a CIDR range
/// (`10.0.0.0/8`, `2001:db8::/32`), IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses an address or a range; a range with bits set past its prefix
    /// (`10.0.0.1/8`) is refused, as it is most likely a typo for a single address.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("'{raw}' is not an IP address or a CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)")
        })?;
        // One IPv4-mapped IPv6 address (`::ffff:10.0.0.7`) means the IPv4 address, the form
        // peers are compared in.
        let network = if prefix.is_none() {
            network.to_canonical()
        } else {
            network
        };
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(text) => text
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{raw}': the prefix length must be 0 to {max}"))?,
        };
        let range = Self { network, prefix };
        let masked = range.masked(network);
        if masked != network {
            return Err(format!(
                "'{raw}' has bits set past its /{prefix} prefix: write {masked}/{prefix}, or the address alone"
            ));
        }
        Ok(range)
    }

    /// True when `address` (in canonical form: IPv4 as IPv4) is in the range.
    pub fn contains(&self, address: IpAddr) -> bool {
        let same_family = self.network.is_ipv4() == address.is_ipv4();
        same_family && self.masked(address) == self.network
    }

    /// `address` with the bits past this range's prefix cleared (same family as the range).
    fn masked(&self, address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V4(a) => IpAddr::V4(mask_v4(a, self.prefix)),
            IpAddr::V6(a) => IpAddr::V6(mask_v6(a, self.prefix)),
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask_v4(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(address);
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits & mask)
}

fn mask_v6(address: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(address);
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    Ipv6Addr::from(bits & mask)
}

/// `api.trusted_proxies`: the reverse proxies whose forwarding header is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpRange>);

impl TrustedProxies {
    /// Parses the configured entries; the error names the first bad one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| IpRange::parse(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when `address` (canonical form) is a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(address))
    }

    /// True when no proxy is trusted (the peer is always the client).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `api.client_address_header`: the header a trusted proxy reports the client in. Only one
/// is read: a proxy that appends to `X-Forwarded-For` passes a client's own `Forwarded`
/// header through untouched, so reading both would let the client choose its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ClientHeader {
    /// Parses `x-forwarded-for` or `forwarded` (any case).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            _ => Err(format!("'{raw}' is not x-forwarded-for or forwarded")),
        }
    }

    /// The header's name.
    pub fn name(self) -> HeaderName {
        match self {
            Self::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            Self::Forwarded => header::FORWARDED,
        }
    }
}

/// Finds a request's client address from its peer and headers (module docs).
#[derive(Debug, Clone, Default)]
pub struct ClientResolver {
    proxies: TrustedProxies,
    header: ClientHeader,
}

impl ClientResolver {
    /// A resolver trusting `proxies` to report clients in `header`.
    pub fn new(proxies: TrustedProxies, header: ClientHeader) -> Self {
        Self { proxies, header }
    }

    /// The client address of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.proxies.contains(peer) {
            return peer;
        }
        match self.header {
            ClientHeader::XForwardedFor => self.walk_x_forwarded_for(peer, headers),
            ClientHeader::Forwarded => {
                let mut hops = Vec::new();
                for value in headers.get_all(header::FORWARDED) {
                    match value.to_str() {
                        Ok(text) => forwarded_hops(text, &mut hops),
                        Err(_) => hops.push(None),
                    }
                }
                match hops
                    .into_iter()
                    .rev()
                    .try_fold(peer, |at, hop| self.step(at, hop))
                {
                    ControlFlow::Continue(leftmost) => leftmost,
                    ControlFlow::Break(client) => client,
                }
            }
        }
    }

    /// `X-Forwarded-For`, read from the right without collecting the hops.
    fn walk_x_forwarded_for(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut at = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else {
                return at;
            };
            for item in text.rsplit(',') {
                match self.step(at, parse_node(item)) {
                    ControlFlow::Continue(next) => at = next,
                    ControlFlow::Break(client) => return client,
                }
            }
        }
        at
    }

    /// One hop to the left of `at` (a trusted proxy): go on past another trusted proxy,
    /// stop at the client, or stop at `at` when the hop is not an address.
    fn step(&self, at: IpAddr, hop: Option<IpAddr>) -> ControlFlow<IpAddr, IpAddr> {
        match hop {
            None => ControlFlow::Break(at),
            Some(address) if self.proxies.contains(address) => ControlFlow::Continue(address),
            Some(address) => ControlFlow::Break(address),
        }
    }
}

/// The key a client address is limited under: an IPv4 address, or the /64 network of an
/// IPv6 address (one household or school network gets a whole /64, so per-address keys
/// would give one client 2^64 buckets).
pub fn limit_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => IpAddr::V6(mask_v6(a, 64)),
    }
}

/// An address written as a node of `X-Forwarded-For` or of a `for=` parameter: `192.0.2.1`,
/// `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`. `unknown`,
/// obfuscated names (`_hidden`) and anything else are `None`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if let Ok(address) = raw.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| IpAddr::V6(a).to_canonical());
    }
    let (host, _port) = raw.split_once(':')?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Appends the `for=` of each element of one `Forwarded` header value (RFC 7239 §4), left
/// to right: `None` for an element without exactly one `for=`, or whose node is not an
/// address.
fn forwarded_hops(value: &str, hops: &mut Vec<Option<IpAddr>>) {
    for element in split_unquoted(value, ',') {
        let mut fors = split_unquoted(element, ';').filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then_some(value)
        });
        let hop = match (fors.next(), fors.next()) {
            (Some(node), None) => unquote(node.trim()).and_then(|node| parse_node(&node)),
            _ => None,
        };
        hops.push(hop);
    }
}

/// Splits `text` at `separator` where it is not inside a quoted string (`\` escapes the
/// next character inside one).
fn split_unquoted(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts.into_iter()
}

/// A token, or the content of a quoted string with its escapes undone; `None` for an
/// unterminated quoted string.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn resolver(proxies: &[&str], header: ClientHeader) -> ClientResolver {
        ClientResolver::new(TrustedProxies::parse(proxies).unwrap(), header)
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn ranges_parse_and_match_both_families() {
        let range = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(range.contains(ip("10.255.0.1")));
        assert!(!range.contains(ip("11.0.0.1")));
        assert!(!range.contains(ip("::a00:1")), "IPv6 never matches IPv4");
        let range = IpRange::parse(" 2001:db8::/32 ").unwrap();
        assert!(range.contains(ip("2001:db8:ffff::1")));
        assert!(!range.contains(ip("2001:db9::1")));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpRange::parse("::/0").unwrap().contains(ip("::1")));
        let one = IpRange::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert_eq!(one.to_string(), "192.0.2.7/32");
        let mapped = IpRange::parse("::ffff:192.0.2.7").unwrap();
        assert!(mapped.contains(ip("192.0.2.7")));
        for (bad, says) in [
            ("10.0.0.1/8", "write 10.0.0.0/8"),
            ("10.0.0.0/33", "0 to 32"),
            ("2001:db8::/129", "0 to 128"),
            ("10.0.0.0/", "0 to 32"),
            ("10.0.0.0/-1", "0 to 32"),
            ("proxy.example", "not an IP address"),
            ("", "not an IP address"),
            ("10.0.0.300", "not an IP address"),
        ] {
            let error = IpRange::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        let error = TrustedProxies::parse(&["10.0.0.0/8", "nope"]).unwrap_err();
        assert!(error.contains("'nope'"), "{error}");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let resolver = resolver(&["10.0.0.0/8"], ClientHeader::XForwardedFor);
        let spoofed = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(
            resolver.client(ip("198.51.100.1"), &spoofed),
            ip("198.51.100.1")
        );
        let nobody = ClientResolver::default();
        assert_eq!(nobody.client(ip("10.0.0.1"), &spoofed), ip("10.0.0.1"));
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_past_trusted_proxies() {
        let resolver = resolver(&["10.0.0.0/8", "fd00::/8"], ClientHeader::XForwardedFor);
        let peer = ip("10.0.0.1");
        for (values, client) in [
            (vec!["203.0.113.9"], "203.0.113.9"),
            // The client wrote the leftmost entry itself: the proxy's entry wins.
            (vec!["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
            (vec!["6.6.6.6, 203.0.113.9, 10.1.1.1"], "203.0.113.9"),
            (vec!["6.6.6.6", "203.0.113.9, 10.1.1.1"], "203.0.113.9"),
            (vec!["10.2.2.2, 10.1.1.1"], "10.2.2.2"),
            (vec![" 203.0.113.9:4711 "], "203.0.113.9"),
            (vec!["[2001:db8::1]:4711"], "2001:db8::1"),
            (vec!["2001:db8::1, fd00::2"], "2001:db8::1"),
            (vec!["::ffff:203.0.113.9"], "203.0.113.9"),
            // Not an address: the proxy that wrote it is the client.
            (vec!["6.6.6.6, unknown"], "10.0.0.1"),
            (vec!["6.6.6.6, garbage, 10.1.1.1"], "10.1.1.1"),
            (vec!["6.6.6.6,"], "10.0.0.1"),
            (vec![""], "10.0.0.1"),
            (vec![], "10.0.0.1"),
        ] {
            let found = resolver.client(peer, &headers("x-forwarded-for", &values));
            assert_eq!(found, ip(client), "{values:?}");
        }
        // A mapped IPv4 peer is the IPv4 proxy.
        let found = resolver.client(
            ip("::ffff:10.0.0.1"),
            &headers("x-forwarded-for", &["203.0.113.9"]),
        );
        assert_eq!(found, ip("203.0.113.9"));
        // The other header is not read.
        let found = resolver.client(peer, &headers("forwarded", &["for=203.0.113.9"]));
        assert_eq!(found, peer);
    }

    #[test]
    fn forwarded_elements_parameters_and_quoting() {
        let resolver = resolver(&["10.0.0.0/8"], ClientHeader::Forwarded);
        let peer = ip("10.0.0.1");
        for (values, client) in [
            (vec!["for=192.0.2.60"], "192.0.2.60"),
            (
                vec!["for=192.0.2.60;proto=http;by=203.0.113.43"],
                "192.0.2.60",
            ),
            (vec!["proto=https;For=\"192.0.2.60:8080\""], "192.0.2.60"),
            (vec!["for=\"[2001:db8:cafe::17]\""], "2001:db8:cafe::17"),
            (vec!["for=\"[2001:db8::1]:4711\""], "2001:db8::1"),
            (vec!["for=6.6.6.6, for=192.0.2.43"], "192.0.2.43"),
            (
                vec!["for=6.6.6.6", "for=192.0.2.43, for=10.9.9.9"],
                "192.0.2.43",
            ),
            (vec!["for=192.0.2.43;host=\"a,b;c\""], "192.0.2.43"),
            (vec!["for=\"192.0.2.\\43\""], "192.0.2.43"),
            (vec!["for=10.9.9.9, for=10.8.8.8"], "10.9.9.9"),
            // unknown, obfuscated, missing, repeated or broken `for=`: the reporting proxy.
            (vec!["for=6.6.6.6, for=unknown"], "10.0.0.1"),
            (vec!["for=6.6.6.6, for=_hidden"], "10.0.0.1"),
            (vec!["for=6.6.6.6, for=\"_hidden:_port\""], "10.0.0.1"),
            (vec!["for=6.6.6.6, proto=https"], "10.0.0.1"),
            (vec!["for=6.6.6.6, for=192.0.2.1;for=192.0.2.2"], "10.0.0.1"),
            (vec!["for=6.6.6.6, for=\"192.0.2.1"], "10.0.0.1"),
            (vec!["for=6.6.6.6, for=\"[2001:db8::1\""], "10.0.0.1"),
            (vec!["for=6.6.6.6, for=unknown, for=10.9.9.9"], "10.9.9.9"),
        ] {
            let found = resolver.client(peer, &headers("forwarded", &values));
            assert_eq!(found, ip(client), "{values:?}");
        }
        let found = resolver.client(peer, &headers("x-forwarded-for", &["203.0.113.9"]));
        assert_eq!(found, peer, "X-Forwarded-For is not read");
    }

    #[test]
    fn header_names_parse() {
        assert_eq!(
            ClientHeader::parse("Forwarded"),
            Ok(ClientHeader::Forwarded)
        );
        assert_eq!(
            ClientHeader::parse("x-forwarded-for"),
            Ok(ClientHeader::XForwardedFor)
        );
        assert!(ClientHeader::parse("x-real-ip").is_err());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(
            limit_key(ip("2001:db8::1")),
            limit_key(ip("2001:db8::ffff:2"))
        );
        assert_ne!(
            limit_key(ip("2001:db8::1")),
            limit_key(ip("2001:db8:0:1::1"))
        );
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_ne!(limit_key(ip("192.0.2.1")), limit_key(ip("192.0.2.2")));
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
