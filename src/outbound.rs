//! The guard of outbound HTTP requests (the OneRoster provider, the SMS gateway): a URL
//! whose host is, or resolves to, a loopback, private (RFC 1918, ULA `fc00::/7`),
//! link-local (with the cloud metadata address 169.254.169.254), shared (100.64.0.0/10),
//! unspecified, multicast or broadcast address is refused unless `outbound.allow_private`
//! is true. The check runs when a URL is configured and again on every request: the HTTP
//! clients resolve names through [`GuardedResolver`], so a name that later resolves to
//! an internal address (DNS rebinding) is refused at connect time. The clients follow no
//! redirect (a 3xx is an error) and read bodies up to a cap ([`read_capped`]).

use crate::config::OutboundConfig;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why an outbound request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL cannot be parsed or has no host.
    #[error("'{0}' is not an http or https URL with a host")]
    BadUrl(String),
    /// The host is, or resolves to, an internal address.
    #[error(
        "{host} is an internal address ({ip}); set outbound.allow_private = true to allow loopback, private and link-local addresses"
    )]
    Internal {
        /// The host as written in the URL.
        host: String,
        /// The refused address.
        ip: IpAddr,
    },
    /// The host name does not resolve.
    #[error("{host} does not resolve: {detail}")]
    Unresolved {
        /// The host.
        host: String,
        /// The resolver's error.
        detail: String,
    },
    /// The server answered with a redirect, which is not followed.
    #[error(
        "{url} answered HTTP {status} (a redirect to {location}); redirects are not followed: configure the final URL"
    )]
    Redirect {
        /// The URL asked (redacted).
        url: String,
        /// The status.
        status: u16,
        /// The `Location` header (redacted), or `(none)`.
        location: String,
    },
    /// The body is larger than the cap.
    #[error("the response of {url} is larger than {cap} bytes")]
    TooLarge {
        /// The URL asked (redacted).
        url: String,
        /// The cap, bytes.
        cap: usize,
    },
}

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Loopback, private and link-local addresses are allowed too (tests, on-premises
    /// providers).
    pub allow_private: bool,
}

impl Policy {
    /// The policy of `[outbound]`.
    pub fn from_config(config: &OutboundConfig) -> Self {
        Self {
            allow_private: config.allow_private,
        }
    }

    /// Refuses `ip` unless it is public or internal addresses are allowed.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(OutboundError::Internal {
                host: host.to_string(),
                ip,
            })
        }
    }

    /// Checks a URL without resolving it: http or https with a host, and a host that is an
    /// address literal (or `localhost`) must be allowed. Names are checked when they are
    /// resolved ([`Policy::check_resolved`], [`GuardedResolver`]).
    pub fn check_url(&self, url: &url::Url) -> Result<(), OutboundError> {
        let bad = || OutboundError::BadUrl(crate::config::redact_url(url.as_str()));
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad());
        }
        match url.host().ok_or_else(bad)? {
            url::Host::Ipv4(ip) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => self.check_ip(&format!("[{ip}]"), IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    self.check_ip(&name, IpAddr::V4(Ipv4Addr::LOCALHOST))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// As [`Policy::check_url`], and resolves a host name now, refusing it when any of its
    /// addresses is internal (a URL is checked when it is configured).
    pub async fn check_resolved(&self, url: &url::Url) -> Result<(), OutboundError> {
        self.check_url(url)?;
        let Some(url::Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        if self.allow_private {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs =
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| OutboundError::Unresolved {
                    host: name.to_string(),
                    detail: e.to_string(),
                })?;
        for addr in addrs {
            self.check_ip(name, addr.ip())?;
        }
        Ok(())
    }

    /// The resolver HTTP clients use under this policy.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { policy: *self })
    }

    /// A reqwest client builder under this policy: names resolved through
    /// [`GuardedResolver`], no redirects followed, no proxy (a proxy would resolve the
    /// name itself, past the guard).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        crate::tls::install_crypto_provider();
        reqwest::Client::builder()
            .dns_resolver(self.resolver())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }
}

/// True when `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7, unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10, link-local.
        || (first & 0xffc0) == 0xfe80
        // 2001:db8::/32, documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // 64:ff9b:1::/48 local NAT64 and ::/96 IPv4-compatible.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1)
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

/// A DNS resolver that refuses names resolving to an address the policy does not allow.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Policy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                policy.check_ip(&host, addr.ip())?;
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The guard's refusal inside a transport error (the resolver's answer), if that is what
/// failed.
pub fn refusal_in(error: &reqwest::Error) -> Option<OutboundError> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<OutboundError>() {
            return Some(refused.clone());
        }
        source = cause.source();
    }
    None
}

/// Refuses a 3xx answer of `url` with [`OutboundError::Redirect`].
pub fn refuse_redirect(url: &str, response: &reqwest::Response) -> Result<(), OutboundError> {
    let status = response.status();
    if !status.is_redirection() {
        return Ok(());
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(crate::config::redact_url)
        .unwrap_or_else(|| "(none)".into());
    Err(OutboundError::Redirect {
        url: crate::config::redact_url(url),
        status: status.as_u16(),
        location,
    })
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The transport failed.
    Transport(reqwest::Error),
    /// The body is larger than the cap.
    TooLarge(OutboundError),
}

/// Reads the body of `response` (the answer of `url`), refusing it past `cap` bytes.
pub async fn read_capped(
    url: &str,
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ReadError> {
    let too_large = || {
        ReadError::TooLarge(OutboundError::TooLarge {
            url: crate::config::redact_url(url),
            cap,
        })
    };
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip(internal)), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn literal_and_localhost_urls_are_checked_without_resolving() {
        let deny = Policy::default();
        let allow = Policy {
            allow_private: true,
        };
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "http://localhost:9/x",
            "http://api.localhost/x",
            "http://10.0.0.5/ims",
        ] {
            let url = url::Url::parse(url).unwrap();
            let refused = deny.check_url(&url).unwrap_err().to_string();
            assert!(refused.contains("outbound.allow_private"), "{refused}");
            assert!(allow.check_url(&url).is_ok());
        }
        assert!(
            deny.check_url(&url::Url::parse("https://sis.example.org/ims").unwrap())
                .is_ok()
        );
        assert!(
            deny.check_url(&url::Url::parse("ftp://sis.example.org/").unwrap())
                .is_err()
        );
    }
}
