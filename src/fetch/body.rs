//! Reading a fetched body against a byte budget that all the URL images of one request share, so that
//! a request of URLs can hold no more memory than the same request with the images inline.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;

use super::FetchError;

/// Bytes the URL images of one request may still bring in.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    limit: usize,
    remaining: AtomicUsize,
}

impl ByteBudget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            remaining: AtomicUsize::new(limit),
        }
    }

    /// Takes `n` bytes, or refuses when fewer are left.
    fn take(&self, n: usize) -> Result<(), FetchError> {
        self.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(n))
            .map(|_| ())
            .map_err(|_| FetchError::TooLarge { limit: self.limit })
    }

    fn remaining(&self) -> usize {
        self.remaining.load(Ordering::SeqCst)
    }
}

/// The body, chunk by chunk, stopping as soon as it would pass the budget; a declared length over the
/// budget is refused before any of the body is read.
pub(crate) async fn read_limited(mut response: reqwest::Response, budget: &ByteBudget) -> Result<Bytes, FetchError> {
    let declared = response.content_length().and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > budget.remaining()) {
        return Err(FetchError::TooLarge { limit: budget.limit });
    }
    // The declared length sizes the buffer only up to what the budget allows.
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(budget.remaining()));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| FetchError::Failed("the body could not be read"))?
    {
        budget.take(chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_never_overdrawn() {
        let budget = ByteBudget::new(10);

        assert!(budget.take(6).is_ok());
        assert!(matches!(budget.take(5), Err(FetchError::TooLarge { limit: 10 })));
        assert!(budget.take(4).is_ok());
        assert_eq!(budget.remaining(), 0);
    }
}
