//! What an image URL must be before anything is sent: http or https, an allowed port, no credentials,
//! and a host that is public (or on the operator's allow-list).
//!
//! Hosts are compared as the WHATWG URL parser normalises them, so `2130706433`, `0177.0.0.1`, `127.1`
//! and `0x7f.0.0.1` are all `127.0.0.1`, and `LocalHost.` is `localhost`.

use std::collections::HashSet;
use std::net::IpAddr;

use reqwest::Url;

use super::address;

/// The rules every URL, and every redirect hop, is held to.
#[derive(Debug, Clone)]
pub(crate) struct UrlPolicy {
    /// Ports a URL may name (explicitly or by its scheme's default).
    pub allowed_ports: Vec<u16>,
    /// When set, the only hosts fetched, and trusted wherever they resolve: the operator named them
    /// (tests use it to reach a server on 127.0.0.1). Normalised by [`normalise_host`].
    pub allowed_hosts: Option<HashSet<String>>,
}

/// Why a URL is refused, in words fit for the client: never the address a name resolved to.
pub(crate) type Refusal = &'static str;

impl UrlPolicy {
    pub(crate) fn new(allowed_ports: Vec<u16>, allowed_hosts: &[String]) -> Self {
        let allowed_hosts =
            (!allowed_hosts.is_empty()).then(|| allowed_hosts.iter().map(|h| normalise_host(h)).collect());
        Self {
            allowed_ports,
            allowed_hosts,
        }
    }

    /// Parses an image URL as the client sent it.
    pub(crate) fn parse(text: &str) -> Result<Url, Refusal> {
        Url::parse(text.trim()).map_err(|_| "not a valid absolute URL")
    }

    /// Checks one URL (the first or a redirect's); names are checked again, by address, when resolved.
    pub(crate) fn check(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err("only http and https URLs are fetched");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs with credentials are not fetched");
        }
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        if !self.allowed_ports.contains(&port) {
            return Err("the URL's port is not allowed");
        }
        let host = normalise_host(url.host_str().ok_or("the URL has no host")?);
        if let Some(allowed) = &self.allowed_hosts {
            return if allowed.contains(&host) {
                Ok(())
            } else {
                Err("the URL's host is not on the allow-list")
            };
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => address::check(ip).map_err(|_| "the URL's address is not public"),
            // A name (`localhost` included) is checked by the addresses it resolves to, in the resolver.
            Err(_) => Ok(()),
        }
    }

    /// Whether a name the resolver is asked for is on the allow-list (and so trusted wherever it resolves).
    pub(crate) fn trusts(&self, host: &str) -> bool {
        self.allowed_hosts
            .as_ref()
            .is_some_and(|allowed| allowed.contains(&normalise_host(host)))
    }
}

/// One spelling per host: lower case, no trailing dot, IPv6 without brackets, IP addresses in their
/// canonical form (so that an allow-list entry `::1` matches the URL host `[0:0::1]`).
pub(crate) fn normalise_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> UrlPolicy {
        UrlPolicy::new(vec![80, 443], &[])
    }

    fn check(policy: &UrlPolicy, text: &str) -> Result<(), Refusal> {
        policy.check(&UrlPolicy::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn obfuscated_loopback_and_unspecified_hosts_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://[::]/",
            "HTTP://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://10.0.0.1/",
            "http://192.168.0.1:443/",
        ] {
            assert_eq!(check(&open(), url), Err("the URL's address is not public"), "{url}");
        }
    }

    #[test]
    fn the_url_parser_normalises_hosts_the_way_the_checks_assume() {
        for (url, host) in [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://0x7F000001/", "127.0.0.1"),
            ("http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"),
            ("http://EXAMPLE.com./", "example.com."),
        ] {
            assert_eq!(UrlPolicy::parse(url).unwrap().host_str(), Some(host), "{url}");
        }
    }

    #[test]
    fn public_hosts_pass_and_names_wait_for_their_addresses() {
        for url in [
            "https://example.com/a.png",
            "http://Example.COM./a.png",
            "https://93.184.215.14/a.png",
            "https://[2606:4700:4700::1111]/a.png",
            "http://example.com:80/",
            "http://localhost/",
        ] {
            assert_eq!(check(&open(), url), Ok(()), "{url}");
        }
    }

    #[test]
    fn schemes_ports_and_credentials_are_refused() {
        assert_eq!(
            check(&open(), "ftp://example.com/a.png"),
            Err("only http and https URLs are fetched")
        );
        assert_eq!(
            check(&open(), "file:///etc/passwd"),
            Err("only http and https URLs are fetched")
        );
        assert_eq!(
            check(&open(), "http://example.com:22/"),
            Err("the URL's port is not allowed")
        );
        assert_eq!(
            check(&open(), "https://user:pw@example.com/"),
            Err("URLs with credentials are not fetched")
        );
        assert!(UrlPolicy::parse("/relative.png").is_err());
        assert!(UrlPolicy::parse("http://exa mple.com/").is_err());
    }

    #[test]
    fn the_allow_list_is_the_only_way_in_and_is_trusted() {
        let policy = UrlPolicy::new(
            vec![8080],
            &["127.0.0.1".into(), "Images.Example.com.".into(), "[::1]".into()],
        );

        assert_eq!(check(&policy, "http://127.0.0.1:8080/"), Ok(()));
        assert_eq!(check(&policy, "http://2130706433:8080/"), Ok(()));
        assert_eq!(check(&policy, "http://[0::1]:8080/"), Ok(()));
        assert_eq!(check(&policy, "http://images.example.com:8080/"), Ok(()));
        assert!(policy.trusts("IMAGES.example.com."));
        for refused in [
            "http://127.0.0.2:8080/",
            "http://localhost:8080/",
            "http://example.com:8080/",
        ] {
            assert_eq!(
                check(&policy, refused),
                Err("the URL's host is not on the allow-list"),
                "{refused}"
            );
        }
        assert!(!policy.trusts("localhost"));
        assert!(!open().trusts("127.0.0.1"));
    }
}
