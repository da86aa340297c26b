//! The client's address: the peer's, unless the peer is a trusted proxy, in which case the
//! nearest untrusted hop of `X-Forwarded-For`. Only configured proxies are believed (anyone can
//! send the header), and the rightmost untrusted entry is taken (a client can prepend entries,
//! not append them), so rate limits and throttles key on an address the client cannot choose.

use std::net::IpAddr;

use poem::{Endpoint, Middleware, Request};

/// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR blocks (`10.0.0.0/8, 127.0.0.1`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| format!("{item:?} is not an IP address or CIDR block"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item:?}: bad prefix length"))?,
                None => max,
            };
            blocks.push((addr, bits));
        }
        Ok(Self(blocks))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(block, bits)| in_block(ip, *block, *bits))
    }

    /// The client's address for a request from `peer` carrying `forwarded_for`.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = match forwarded_for {
            Some(header) => match header.split(',').map(|h| h.trim().parse::<IpAddr>()).collect() {
                Ok(hops) => hops,
                // A malformed header from a trusted proxy: believe only the proxy itself.
                Err(_) => return peer,
            },
            None => return peer,
        };
        hops.iter().rev().find(|ip| !self.contains(**ip)).or(hops.first()).copied().unwrap_or(peer)
    }
}

fn in_block(ip: IpAddr, block: IpAddr, bits: u8) -> bool {
    match (ip, block) {
        (IpAddr::V4(ip), IpAddr::V4(block)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(ip) & mask == u32::from(block) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(block)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(ip) & mask == u128::from(block) & mask
        }
        _ => false,
    }
}

/// The client's address, as [`ClientAddress`] found it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Puts each request's [`ClientIp`] into its extensions (read it with [`client_ip`]).
pub struct ClientAddress(pub TrustedProxies);

impl<E: Endpoint> Middleware<E> for ClientAddress {
    type Output = ClientAddressEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ClientAddressEndpoint { inner: ep, trusted: self.0.clone() }
    }
}

pub struct ClientAddressEndpoint<E> {
    inner: E,
    trusted: TrustedProxies,
}

impl<E: Endpoint> Endpoint for ClientAddressEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        if let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) {
            let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
            let ip = self.trusted.client_ip(peer, forwarded);
            req.extensions_mut().insert(ClientIp(ip));
        }
        self.inner.call(req).await
    }
}

/// The request's client address (see the module docs), as text for rate-limit keys and logs.
pub fn client_ip(req: &Request) -> Option<String> {
    match req.extensions().get::<ClientIp>() {
        Some(ClientIp(ip)) => Some(ip.to_string()),
        None => req.remote_addr().as_socket_addr().map(|a| a.ip().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_only_its_untrusted_tail() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1, fd00::/8").unwrap();
        let check = |peer: &str, header: Option<&str>, expected: &str| {
            assert_eq!(trusted.client_ip(ip(peer), header), ip(expected), "{peer} {header:?}");
        };
        check("203.0.113.9", Some("1.1.1.1"), "203.0.113.9");
        check("10.1.2.3", None, "10.1.2.3");
        check("10.1.2.3", Some("198.51.100.7"), "198.51.100.7");
        // A client's own prefix is ignored: the proxy appended the real peer last.
        check("10.1.2.3", Some("6.6.6.6, 198.51.100.7"), "198.51.100.7");
        check("127.0.0.1", Some("198.51.100.7, 10.9.9.9"), "198.51.100.7");
        check("10.1.2.3", Some("10.2.2.2, 10.3.3.3"), "10.2.2.2");
        check("10.1.2.3", Some("not an address"), "10.1.2.3");
        check("fd00::1", Some("2001:db8::5"), "2001:db8::5");
        check("11.0.0.1", Some("198.51.100.7"), "11.0.0.1");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }
}
