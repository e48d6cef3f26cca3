//! The fetch client's only DNS resolver: it resolves a name once and hands the connector only the
//! addresses that passed the check, so the connection goes to an address that was checked (a second
//! lookup, which DNS rebinding would answer differently, never happens).

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address;
use super::policy::{normalise_host, UrlPolicy};

pub(crate) struct GuardedResolver {
    policy: Arc<UrlPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<UrlPolicy>) -> Self {
        Self { policy }
    }
}

/// Every address of a name was refused; found in the error chain to answer `url_forbidden`.
#[derive(Debug)]
pub(crate) struct NoPublicAddress;

impl fmt::Display for NoPublicAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the host has no public address")
    }
}

impl Error for NoPublicAddress {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        // Looked up as the policy compares it (`LocalHost.` is `localhost`), so that a spelling cannot
        // make a name resolve differently from what it is checked as.
        let host = normalise_host(name.as_str());
        let trusted = self.policy.trusts(&host);
        Box::pin(async move {
            // Port 0: the connector puts in the URL's port.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if resolved.is_empty() {
                return Err("the host has no address".into());
            }
            let checked: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| {
                    let verdict = address::check(addr.ip());
                    if let Err(why) = verdict {
                        tracing::debug!(%host, ip = %addr.ip(), why, "image URL address refused");
                    }
                    trusted || verdict.is_ok()
                })
                .collect();
            if checked.is_empty() {
                return Err(Box::new(NoPublicAddress) as Box<dyn Error + Send + Sync>);
            }
            Ok(Box::new(checked.into_iter()) as Addrs)
        })
    }
}

/// Whether a request failed because the resolver refused every address.
pub(crate) fn refused_address(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn Error + 'static)> = err.source();
    while let Some(err) = source {
        if err.is::<NoPublicAddress>() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn resolver(allowed_hosts: &[String]) -> GuardedResolver {
        GuardedResolver::new(Arc::new(UrlPolicy::new(vec![80], allowed_hosts)))
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused() {
        let err = resolver(&[])
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .err()
            .expect("refused");

        assert!(err.is::<NoPublicAddress>(), "{err}");
    }

    #[tokio::test]
    async fn an_allow_listed_name_resolves_wherever_it_points() {
        let addrs: Vec<SocketAddr> = resolver(&["LOCALHOST".into()])
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .expect("trusted")
            .collect();

        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        assert!(!addrs.is_empty());
    }
}
