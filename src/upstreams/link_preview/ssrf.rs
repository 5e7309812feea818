//! The SSRF guard of the link-preview fetcher: a user-supplied URL must never make the server
//! talk to itself, the private network or a cloud metadata endpoint.
//!
//! Only `http`/`https` on allowed ports; IP literals are checked before the request, host
//! names are checked by [`GuardedResolver`] *after* resolution (so a name that resolves to
//! 127.0.0.1, or re-resolves to it later, is refused, and the connection goes to exactly the
//! addresses that were checked); redirects are followed by hand and each hop is checked like
//! the first URL. IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses are checked by
//! the IPv4 address they embed.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use url::{Host, Url};

/// Why a URL or address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not http or https.
    #[error("only http and https links are previewed")]
    Scheme,
    /// A port outside `allowed_ports`.
    #[error("port not allowed")]
    Port,
    /// The URL has credentials, no host, or cannot be parsed.
    #[error("malformed link")]
    Malformed,
    /// The host is or resolves to a loopback, private, link-local, multicast, reserved or
    /// metadata address.
    #[error("the link points to a non-public address")]
    Address,
}

/// Hosts and networks that may be fetched although they are not public (tests, demos).
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl Allowlist {
    /// Parses entries: an IP address (`127.0.0.1`, `::1`), a network (`10.0.0.0/8`) or a host
    /// name (`localhost`). Returns the first entry that is none of these.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in entries {
            let entry = entry.trim();
            if let Ok(net) = entry.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = entry.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if !entry.is_empty()
                && entry.len() <= 253
                && entry.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                list.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(entry.to_owned());
            }
        }
        Ok(list)
    }

    /// True when the host name is allowlisted.
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host.trim_end_matches('.')))
    }

    /// True when the address is in an allowlisted network.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// True when the URL's host (name or literal) is allowlisted.
    pub fn allows_url(&self, url: &Url) -> bool {
        match url.host() {
            Some(Host::Domain(name)) => self.allows_host(name),
            Some(Host::Ipv4(ip)) => self.allows_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.allows_ip(IpAddr::V6(ip)),
            None => false,
        }
    }
}

/// An IPv4 address in IPv6 clothing, unwrapped.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The IPv4 address embedded in an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

/// True for a public unicast address that a preview may be fetched from.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0                                  // 0.0.0.0/8 "this network"
        || ip.is_loopback()                        // 127.0.0.0/8
        || ip.is_private()                         // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()                      // 169.254/16, incl. 169.254.169.254 metadata
        || (a == 100 && (b & 0xc0) == 64)          // 100.64/10 carrier-grade NAT
        || (a == 192 && b == 0 && c == 0)          // 192.0.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)          // 192.0.2.0/24 TEST-NET-1
        || (a == 198 && (b & 0xfe) == 18)          // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100)       // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)        // TEST-NET-3
        || ip.is_multicast()                       // 224/4
        || a >= 240                                // 240/4 reserved, 255.255.255.255 broadcast
        || (a == 192 && b == 88 && c == 99)) // 6to4 relay anycast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()                          // ::
        || ip.is_loopback()                        // ::1
        || ip.is_multicast()                       // ff00::/8
        || (s[0] & 0xfe00) == 0xfc00               // fc00::/7 unique local (incl. fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80               // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0               // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8)      // 2001:db8::/32 documentation
        || (s[0] == 0x2001 && s[1] < 0x0200)       // 2001::/23 IETF protocol assignments (Teredo, ...)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard
        || s[0] == 0) // ::/16 other reserved/embedded forms
}

/// The fetch policy: schemes, ports, addresses and the allowlist.
#[derive(Clone, Debug)]
pub struct Guard {
    allow: Allowlist,
    ports: Vec<u16>,
}

impl Guard {
    /// A guard allowing `ports` and, whatever their address, the allowlisted hosts.
    pub fn new(allow: Allowlist, ports: Vec<u16>) -> Self {
        Self { allow, ports }
    }

    /// Checks a URL before it is fetched (the first one and every redirect target): scheme,
    /// credentials, port, and IP-literal hosts. Host names are checked at resolution.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Malformed);
        }
        match url.host() {
            None => return Err(Refusal::Malformed),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(Host::Domain("")) => return Err(Refusal::Malformed),
            Some(Host::Domain(_)) => {}
        }
        let port = url.port_or_known_default().ok_or(Refusal::Malformed)?;
        if !self.allow.allows_url(url) && !self.ports.contains(&port) {
            return Err(Refusal::Port);
        }
        Ok(())
    }

    /// Checks one address (literal or resolved).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if is_public(ip) || self.allow.allows_ip(ip) { Ok(()) } else { Err(Refusal::Address) }
    }

    /// The resolver that enforces this guard on host names.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { guard: self.clone() })
    }
}

/// The refusal carried through reqwest's error chain when a host name resolves to a refused
/// address (found again with [`refused_in`]).
#[derive(Debug, thiserror::Error)]
#[error("host resolves to a non-public address")]
pub struct ResolvedToRefused;

/// A DNS resolver that refuses names resolving to any non-public address (unless
/// allowlisted). If one of several addresses is refused, the name is refused: an attacker
/// controlling DNS could otherwise race a private address into the connection attempt.
#[derive(Debug)]
pub struct GuardedResolver {
    guard: Guard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !guard.allow.allows_host(&host) && addrs.iter().any(|addr| guard.check_ip(addr.ip()).is_err()) {
                return Err(Box::new(ResolvedToRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// True when an error (or one of its causes) is the resolver's refusal.
pub fn refused_in(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if err.is::<ResolvedToRefused>() {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &[&str]) -> Guard {
        let entries: Vec<String> = allow.iter().map(|s| (*s).to_owned()).collect();
        Guard::new(Allowlist::parse(&entries).expect("allowlist"), vec![80, 443, 8080])
    }

    fn check(g: &Guard, url: &str) -> Result<(), Refusal> {
        g.check_url(&Url::parse(url).map_err(|_| Refusal::Malformed)?)
    }

    #[test]
    fn refuses_every_non_public_literal() {
        let g = guard(&[]);
        for url in [
            "http://127.0.0.1/",
            "http://127.1.2.3:8080/",
            "http://2130706433/", // 127.0.0.1 as one number
            "http://0x7f.0.0.1/", // hex octet
            "http://0177.0.0.1/", // octal octet
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/", // NAT64 of 169.254.169.254
            "http://[2002:7f00:1::]/",      // 6to4 of 127.0.0.1
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/", // AWS metadata over IPv6
            "http://[fc00::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
        ] {
            assert_eq!(check(&g, url), Err(Refusal::Address), "{url}");
        }
    }

    #[test]
    fn refuses_other_schemes_ports_and_credentials() {
        let g = guard(&[]);
        assert_eq!(check(&g, "file:///etc/passwd"), Err(Refusal::Scheme));
        assert_eq!(check(&g, "gopher://example.com/"), Err(Refusal::Scheme));
        assert_eq!(check(&g, "ftp://example.com/"), Err(Refusal::Scheme));
        assert_eq!(check(&g, "http://example.com:22/"), Err(Refusal::Port));
        assert_eq!(check(&g, "http://example.com:6379/"), Err(Refusal::Port));
        assert_eq!(check(&g, "http://user:pw@example.com/"), Err(Refusal::Malformed));
    }

    #[test]
    fn allows_public_addresses_names_and_the_allowlist() {
        let g = guard(&[]);
        for url in [
            "https://example.com/a",
            "http://93.184.215.14/",
            "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
            "http://8.8.8.8:8080/",
        ] {
            assert_eq!(check(&g, url), Ok(()), "{url}");
        }
        let g = guard(&["127.0.0.1", "10.1.0.0/16", "localhost"]);
        assert_eq!(check(&g, "http://127.0.0.1:45678/page"), Ok(()), "allowlisted, any port");
        assert_eq!(check(&g, "http://[::ffff:127.0.0.1]:45678/"), Ok(()), "mapped form of an allowlisted ip");
        assert_eq!(check(&g, "http://10.1.2.3/"), Ok(()));
        assert_eq!(check(&g, "http://10.2.0.1/"), Err(Refusal::Address));
        assert_eq!(check(&g, "http://127.0.0.2/"), Err(Refusal::Address));
        assert!(g.allow.allows_host("LOCALHOST."));
    }

    #[test]
    fn allowlist_rejects_garbage() {
        assert!(Allowlist::parse(&["not a host!".to_owned()]).is_err());
        assert!(Allowlist::parse(&["10.0.0.0/33".to_owned()]).is_err());
    }

    #[tokio::test]
    async fn resolver_refuses_names_that_resolve_to_loopback() {
        use reqwest::dns::Resolve as _;
        let g = guard(&[]);
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let err = match g.resolver().resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(err) => err,
        };
        assert!(refused_in(err.as_ref()), "{err}");
        let g = guard(&["localhost"]);
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        assert!(g.resolver().resolve(name).await.is_ok(), "allowlisted name resolves");
    }
}
