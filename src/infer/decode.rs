//! From an image source to model input: the bytes, base64 or URL of one image ([`Upload`]), and the
//! bounded blocking pool that fetches, decodes and preprocesses untrusted images off the async threads.
//!
//! The pool's wait is bounded too: a request is refused at once with `Overloaded` + a retry delay (the
//! answer a full inference queue gives) when more than `--max-pending-decodes` images wait for a decode
//! slot, or when the images ahead of it would, at the measured decode pace, take more than half of its
//! time left, instead of waiting for a slot until its deadline passes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::time::Instant as Deadline;

use super::pace::Pace;
use super::EmbedError;
use crate::fetch::{ByteBudget, FetchError, UrlFetcher};
use crate::metrics::Metrics;
use crate::model::Preprocessing;
use crate::preprocess::{preprocess, preprocess_placed, DecodeLimits, Placement};

/// An image's input at the size where a model locates matches, and where that input came from.
pub(crate) type LocatedInput = (Vec<f32>, Placement);

/// One image of a request, not yet decoded, with the name that errors about it use.
#[derive(Debug)]
pub(crate) struct Upload {
    /// `image_a`, `references[2]`, ...: what the caller sent it as.
    pub label: String,
    pub data: UploadData,
}

#[derive(Debug)]
pub(crate) enum UploadData {
    /// A multipart file part.
    Raw(Bytes),
    /// A JSON `base64` string, decoded on the blocking pool with the image.
    Base64(String),
    /// A JSON `url`, fetched before decoding.
    Url(String),
}

impl Upload {
    pub(crate) fn raw(label: String, bytes: Bytes) -> Self {
        Self {
            label,
            data: UploadData::Raw(bytes),
        }
    }

    /// A JSON image, in whichever form it came.
    pub(crate) fn base64(label: String, text: String) -> Self {
        Self {
            label,
            data: UploadData::Base64(text),
        }
    }

    pub(crate) fn url(label: String, url: String) -> Self {
        Self {
            label,
            data: UploadData::Url(url),
        }
    }

    fn into_bytes(self) -> Result<(String, Bytes), EmbedError> {
        match self.data {
            UploadData::Raw(bytes) => Ok((self.label, bytes)),
            UploadData::Base64(text) => match decode_base64(&text) {
                Ok(bytes) => Ok((self.label, bytes.into())),
                Err(reason) => Err(EmbedError::InvalidBase64 {
                    field: self.label,
                    reason,
                }),
            },
            UploadData::Url(_) => Err(EmbedError::Internal(
                "an image URL reached the decoder unfetched".into(),
            )),
        }
    }
}

/// Standard alphabet, padding optional: clients differ on padding, and both forms are unambiguous.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    // A data URL (`data:image/png;base64,...`) is what browsers hand out; its prefix says nothing we trust.
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => text,
    };
    BASE64.decode(payload.trim()).map_err(|e| e.to_string())
}

/// Decodes and preprocesses images on tokio's blocking pool, at most `size` at once, with at most
/// `max_waiting` more admitted to wait for a slot; fetches image URLs first when the server accepts them.
pub(crate) struct DecodePool {
    permits: Arc<Semaphore>,
    /// Images admitted and not yet decoding (URL images while they are fetched included): bounded by
    /// `max_waiting`, so that a burst beyond what the decoders clear within a deadline is refused up
    /// front rather than queued to time out, having held a connection and its memory all along.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// How fast decodes finish: what the `Retry-After` of a refusal is estimated from.
    pace: Arc<Pace>,
    limits: DecodeLimits,
    metrics: Metrics,
    /// `None` unless `--allow-url-inputs`: then a `{"url": ...}` image is refused.
    urls: Option<UrlFetcher>,
}

impl DecodePool {
    pub(crate) fn new(size: usize, max_waiting: usize, limits: DecodeLimits, metrics: Metrics) -> Self {
        let size = size.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: max_waiting.max(1),
            // One image per "batch", `size` of them at once.
            pace: Arc::new(Pace::new(1, size)),
            limits,
            metrics,
            urls: None,
        }
    }

    /// Accepts image URLs, fetched by `urls` (`None` keeps refusing them).
    pub(crate) fn with_urls(mut self, urls: Option<UrlFetcher>) -> Self {
        self.urls = urls;
        self
    }

    /// Model input for every image, in order; the first failing image (in order) is the error. Refused
    /// at once with `Overloaded` when the request's images would not fit in the wait for a decode slot,
    /// or would not be decoded well before `deadline`.
    pub(crate) async fn preprocess(
        &self,
        uploads: Vec<Upload>,
        pp: &Preprocessing,
        deadline: Deadline,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let prepared = self.prepare(uploads, pp, deadline, None).await?;
        Ok(prepared.into_iter().map(|(input, _)| input).collect())
    }

    /// As `preprocess`, and from the same decode (in full) each image's input for `located` with its
    /// [`Placement`].
    pub(crate) async fn preprocess_placed(
        &self,
        uploads: Vec<Upload>,
        pp: &Preprocessing,
        located: &Preprocessing,
        deadline: Deadline,
    ) -> Result<Vec<(Vec<f32>, LocatedInput)>, EmbedError> {
        let prepared = self.prepare(uploads, pp, deadline, Some(located)).await?;
        Ok(prepared
            .into_iter()
            .map(|(input, located)| (input, located.expect("placed when asked; this is a bug")))
            .collect())
    }

    /// As `preprocess`, each image's outcome on its own: for callers that go on without the images
    /// that do not decode (`simverify reindex`). Refused as a whole only when not admitted.
    pub(crate) async fn preprocess_each(
        &self,
        uploads: Vec<Upload>,
        pp: &Preprocessing,
        deadline: Deadline,
    ) -> Result<Vec<Result<Vec<f32>, EmbedError>>, EmbedError> {
        let prepared = self.prepare_each(uploads, pp, deadline, None).await?;
        Ok(prepared
            .into_iter()
            .map(|outcome| outcome.map(|(input, _)| input))
            .collect())
    }

    async fn prepare(
        &self,
        uploads: Vec<Upload>,
        pp: &Preprocessing,
        deadline: Deadline,
        located: Option<&Preprocessing>,
    ) -> Result<Vec<(Vec<f32>, Option<LocatedInput>)>, EmbedError> {
        self.prepare_each(uploads, pp, deadline, located)
            .await?
            .into_iter()
            .collect()
    }

    async fn prepare_each(
        &self,
        uploads: Vec<Upload>,
        pp: &Preprocessing,
        deadline: Deadline,
        located: Option<&Preprocessing>,
    ) -> Result<Vec<Result<(Vec<f32>, Option<LocatedInput>), EmbedError>>, EmbedError> {
        // All of a request's images or none: half a request admitted is decoding work nobody can use.
        let mut admitted = self.admit(uploads.len(), deadline)?.into_iter();
        let pp = Arc::new(pp.clone());
        let located = located.map(|l| Arc::new(l.clone()));
        // One budget for all the URL images of the request, as the body limit bounds all its uploads.
        let budget = self.urls.as_ref().map(UrlFetcher::budget);
        let jobs = uploads.into_iter().map(|upload| {
            let waiting = admitted.next().expect("one admission per upload; this is a bug");
            self.one(upload, waiting, budget.as_ref(), Arc::clone(&pp), located.clone())
        });
        Ok(futures::future::join_all(jobs).await)
    }

    /// Counts `images` in as waiting, one guard each, or refuses them all when the wait is full or too
    /// slow for `deadline`. A request larger than the whole wait is let in when nothing waits, rather than
    /// never fitting.
    fn admit(&self, images: usize, deadline: Deadline) -> Result<Vec<Waiting>, EmbedError> {
        let before = self.waiting.fetch_add(images, Ordering::SeqCst);
        // Half the time left: the rest of the request (the model's queue, the forward pass, the answer)
        // needs the other half, and the pace is an average, not a promise.
        let time_left = deadline.saturating_duration_since(Deadline::now());
        let too_slow = self.pace.drain_time(before + images) > time_left / 2;
        if before > 0 && (before + images > self.max_waiting || too_slow) {
            self.waiting.fetch_sub(images, Ordering::SeqCst);
            return Err(EmbedError::Overloaded {
                retry_after: self.pace.retry_after(before),
            });
        }
        Ok((0..images).map(|_| Waiting(Arc::clone(&self.waiting))).collect())
    }

    async fn one(
        &self,
        upload: Upload,
        waiting: Waiting,
        budget: Option<&ByteBudget>,
        pp: Arc<Preprocessing>,
        located: Option<Arc<Preprocessing>>,
    ) -> Result<(Vec<f32>, Option<LocatedInput>), EmbedError> {
        // Fetched before taking a decode permit: waiting on the network must not hold up decoding.
        let upload = self.fetch_url(upload, budget).await?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the decode semaphore is never closed; this is a bug");
        // Decoding now: its place in the wait is free for another request.
        drop(waiting);
        let limits = self.limits;
        let duration = self.metrics.image_decode_duration_seconds.clone();
        let size = self.metrics.image_size_bytes.clone();
        let pace = Arc::clone(&self.pace);
        tokio::task::spawn_blocking(move || {
            // Held until the decode ends, even when the request that asked has gone.
            let _permit = permit;
            let _timer = duration.start_timer();
            let started = Instant::now();
            let (label, bytes) = upload.into_bytes()?;
            size.observe(bytes.len() as f64);
            let input = match &located {
                Some(located) => preprocess_placed(&bytes, &limits, &pp, located)
                    .map(|(input, located, placement)| (input, Some((located, placement)))),
                None => preprocess(&bytes, &limits, &pp).map(|input| (input, None)),
            }
            .map_err(|error| EmbedError::Image { field: label, error });
            pace.record(started.elapsed());
            input
        })
        .await
        .map_err(|e| EmbedError::Internal(format!("image decode task failed: {e}")))?
    }

    /// The upload itself, or for a URL the fetched bytes.
    async fn fetch_url(&self, upload: Upload, budget: Option<&ByteBudget>) -> Result<Upload, EmbedError> {
        let UploadData::Url(url) = &upload.data else {
            return Ok(upload);
        };
        let (Some(fetcher), Some(budget)) = (&self.urls, budget) else {
            return Err(EmbedError::UrlForbidden {
                field: upload.label,
                reason: "this server does not fetch image URLs",
            });
        };
        match fetcher.fetch(url, budget).await {
            Ok(bytes) => Ok(Upload::raw(upload.label, bytes)),
            Err(err) => Err(fetch_error(upload.label, err)),
        }
    }
}

/// One admitted image's place in the wait for a decode slot; given back when dropped (decoding has
/// begun, or the request failed or went away first).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A failed fetch as the client sees it: which image, and no more than it needs.
fn fetch_error(field: String, err: FetchError) -> EmbedError {
    match err {
        FetchError::Forbidden(reason) => EmbedError::UrlForbidden { field, reason },
        FetchError::Failed(reason) => EmbedError::UrlFetchFailed {
            field,
            reason: reason.to_string(),
        },
        FetchError::Status(status) => EmbedError::UrlFetchFailed {
            field,
            reason: format!("the server answered HTTP {status}"),
        },
        FetchError::TooLarge { limit } => EmbedError::UrlTooLarge { field, limit },
        FetchError::Timeout(timeout) => EmbedError::UrlTimeout { field, timeout },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_padding_or_not_and_data_urls() {
        for text in ["aGk=", "aGk", "data:image/png;base64,aGk=", " aGk=\n"] {
            assert_eq!(decode_base64(text).as_deref(), Ok(&b"hi"[..]), "{text:?}");
        }
    }

    #[test]
    fn bad_base64_names_the_field() {
        let err = Upload::base64("image_b".into(), "@@@".into()).into_bytes().unwrap_err();

        assert!(matches!(err, EmbedError::InvalidBase64 { .. }), "{err:?}");
        assert!(err.to_string().starts_with("image_b "), "{err}");
    }

    #[tokio::test]
    async fn urls_are_refused_when_the_server_does_not_fetch_them() {
        let pool = DecodePool::new(1, 1, DecodeLimits::default(), Metrics::new());
        let upload = Upload::url("image_a".into(), "https://example.com/a.png".into());

        let err = pool.fetch_url(upload, None).await.unwrap_err();

        assert!(matches!(err, EmbedError::UrlForbidden { .. }), "{err:?}");
        assert!(err.to_string().starts_with("image_a: "), "{err}");
    }

    fn tiny_png() -> Upload {
        Upload::base64(
            "image_a".into(),
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==".into(),
        )
    }

    fn preprocessing() -> Preprocessing {
        crate::train::supervised::mnist::preprocessing()
    }

    /// Every decode slot is taken and one image waits: the next request is refused at once, with a
    /// `Retry-After`, rather than left to wait for its deadline; once the wait empties, requests get in.
    #[tokio::test]
    async fn a_full_wait_for_a_decode_slot_refuses_at_once() {
        let pool = Arc::new(DecodePool::new(1, 1, DecodeLimits::default(), Metrics::new()));
        let busy = Arc::clone(&pool.permits).acquire_owned().await.unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.preprocess(vec![tiny_png()], &preprocessing(), later()).await }
        });
        while pool.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }

        let refused = pool.preprocess(vec![tiny_png()], &preprocessing(), later()).await;

        let err = refused.expect_err("the wait is full");
        assert!(
            matches!(err, EmbedError::Overloaded { retry_after } if retry_after >= std::time::Duration::from_secs(1)),
            "{err:?}"
        );
        drop(busy);
        assert_eq!(waiter.await.unwrap().expect("the waiting image is decoded").len(), 1);
        assert_eq!(
            pool.waiting.load(Ordering::SeqCst),
            0,
            "every place in the wait is given back"
        );
        assert_eq!(
            pool.preprocess(vec![tiny_png()], &preprocessing(), later())
                .await
                .unwrap()
                .len(),
            1
        );
    }

    /// Room in the wait, but at the measured pace the images ahead take longer than half the time the
    /// request has left: refused at once too.
    #[tokio::test]
    async fn a_wait_longer_than_the_deadline_allows_refuses_at_once() {
        let pool = Arc::new(DecodePool::new(1, 100, DecodeLimits::default(), Metrics::new()));
        pool.pace.record(std::time::Duration::from_millis(100));
        let busy = Arc::clone(&pool.permits).acquire_owned().await.unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.preprocess(vec![tiny_png()], &preprocessing(), later()).await }
        });
        while pool.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }

        // Two images ahead at 100 ms each, 300 ms left: 200 ms > 150 ms.
        let soon = Deadline::now() + std::time::Duration::from_millis(300);
        let refused = pool.preprocess(vec![tiny_png()], &preprocessing(), soon).await;

        assert!(
            matches!(refused, Err(EmbedError::Overloaded { .. })),
            "too slow for its deadline"
        );
        drop(busy);
        waiter.await.unwrap().expect("the waiting image is decoded");
    }

    fn later() -> Deadline {
        Deadline::now() + std::time::Duration::from_secs(60)
    }
}
