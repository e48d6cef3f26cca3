//! Images by URL, fetched behind an SSRF guard: only http(s) on allowed ports, only public addresses
//! (checked when the name is resolved, and connected to exactly), at most three redirects each checked
//! the same way, a byte budget and a total timeout.
//!
//! Modelled on go-camo and imgproxy: the check happens at resolution time inside the HTTP client, so
//! no code path can connect to an address that was not checked.

mod address;
mod body;
mod policy;
mod resolver;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, LOCATION};
use reqwest::redirect;

use crate::config::ServeConfig;

pub(crate) use body::ByteBudget;
use policy::UrlPolicy;

/// Redirects followed before giving up; each hop is checked like the first URL.
const MAX_REDIRECTS: usize = 3;

/// Why a fetch did not produce bytes. The texts are for the client: they never quote the fetched body
/// nor the addresses a name resolved to.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// The URL, a redirect or the resolved address is not allowed.
    Forbidden(&'static str),
    /// The server could not be reached or did not answer with an image body.
    Failed(&'static str),
    /// The server answered a status other than 2xx or a redirect.
    Status(u16),
    /// The body is over the request's byte budget.
    TooLarge { limit: usize },
    /// The whole fetch, redirects included, took longer than the timeout.
    Timeout(Duration),
}

/// The one HTTP client for image URLs, with the policy it enforces.
pub(crate) struct UrlFetcher {
    client: reqwest::Client,
    policy: Arc<UrlPolicy>,
    timeout: Duration,
    /// Bytes all the URL images of one request may bring in together: the body limit, as for uploads.
    max_bytes: usize,
}

impl UrlFetcher {
    /// The fetcher `--allow-url-inputs` asks for; `None` when URLs are not accepted.
    pub(crate) fn from_config(config: &ServeConfig) -> Option<Self> {
        if !config.allow_url_inputs {
            return None;
        }
        let policy = Arc::new(UrlPolicy::new(config.url_allow_ports.clone(), &config.url_allow_hosts));
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("image/*"));
        let client = reqwest::Client::builder()
            // A proxy from the environment would do its own lookup of the name, past our checks.
            .no_proxy()
            // Redirects are followed by hand, so that every hop is checked.
            .redirect(redirect::Policy::none())
            .referer(false)
            .dns_resolver(Arc::new(resolver::GuardedResolver::new(Arc::clone(&policy))))
            .user_agent(concat!("simverify/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client with rustls and no proxy builds; this is a bug");
        Some(Self {
            client,
            policy,
            timeout: Duration::from_millis(config.url_fetch_timeout_ms),
            max_bytes: config.body_limit,
        })
    }

    /// A fresh budget for the URL images of one request.
    pub(crate) fn budget(&self) -> ByteBudget {
        ByteBudget::new(self.max_bytes)
    }

    /// The bytes at `url`, within the timeout and `budget`.
    pub(crate) async fn fetch(&self, url: &str, budget: &ByteBudget) -> Result<Bytes, FetchError> {
        tokio::time::timeout(self.timeout, self.follow(url, budget))
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    async fn follow(&self, url: &str, budget: &ByteBudget) -> Result<Bytes, FetchError> {
        let mut url = UrlPolicy::parse(url).map_err(FetchError::Forbidden)?;
        for hop in 0..=MAX_REDIRECTS {
            self.policy.check(&url).map_err(FetchError::Forbidden)?;
            let response = self.client.get(url.clone()).send().await.map_err(send_error)?;
            let status = response.status();
            if status.is_redirection() {
                if hop == MAX_REDIRECTS {
                    return Err(FetchError::Failed("more than 3 redirects"));
                }
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::Failed("a redirect without a usable Location"))?;
                url = url
                    .join(location)
                    .map_err(|_| FetchError::Failed("a redirect without a usable Location"))?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            return body::read_limited(response, budget).await;
        }
        unreachable!("the loop returns on its last hop; this is a bug")
    }
}

/// A failed send, in words for the client; the full error (without the URL, which may carry tokens)
/// goes to the log.
fn send_error(err: reqwest::Error) -> FetchError {
    if resolver::refused_address(&err) {
        return FetchError::Forbidden("the URL's address is not public");
    }
    tracing::info!(error = %err.without_url(), "image URL fetch failed");
    FetchError::Failed("the server cannot be reached")
}
