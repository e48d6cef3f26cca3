//! Uploaded images: the JSON form (`{"base64": ...}`), and the bounded blocking pool that turns untrusted
//! bytes into model input, off the async threads.

use std::sync::Arc;

use axum::body::Bytes;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::metrics::Metrics;
use crate::model::Preprocessing;
use crate::preprocess::{preprocess, DecodeLimits};

use super::error::ApiError;

/// An image inside a JSON request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageData {
    /// The image file (PNG, JPEG, WebP, GIF or BMP), base64-encoded with the standard alphabet; padding is
    /// optional and a `data:image/...;base64,` prefix is accepted.
    #[schema(example = "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA...")]
    pub base64: String,
}

/// One image of a request, not yet decoded, with the name that errors about it use.
#[derive(Debug)]
pub struct Upload {
    /// `image_a`, `references[2]`, ...: what the caller sent it as.
    pub label: String,
    pub data: UploadData,
}

#[derive(Debug)]
pub enum UploadData {
    /// A multipart file part.
    Raw(Bytes),
    /// A JSON `base64` string, decoded on the blocking pool with the image.
    Base64(String),
}

impl Upload {
    pub fn raw(label: String, bytes: Bytes) -> Self {
        Self {
            label,
            data: UploadData::Raw(bytes),
        }
    }

    pub fn base64(label: String, image: ImageData) -> Self {
        Self {
            label,
            data: UploadData::Base64(image.base64),
        }
    }

    fn into_bytes(self) -> Result<(String, Bytes), ApiError> {
        match self.data {
            UploadData::Raw(bytes) => Ok((self.label, bytes)),
            UploadData::Base64(text) => match decode_base64(&text) {
                Ok(bytes) => Ok((self.label, bytes.into())),
                Err(reason) => Err(ApiError::InvalidBase64 {
                    field: self.label,
                    reason,
                }),
            },
        }
    }
}

/// Standard alphabet, padding optional: clients differ on padding, and both forms are unambiguous.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    // A data URL (`data:image/png;base64,...`) is what browsers hand out; its prefix says nothing we trust.
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => text,
    };
    BASE64.decode(payload.trim()).map_err(|e| e.to_string())
}

/// Decodes and preprocesses images on tokio's blocking pool, at most `size` at once.
pub struct DecodePool {
    permits: Arc<Semaphore>,
    limits: DecodeLimits,
    metrics: Metrics,
}

impl DecodePool {
    pub fn new(size: usize, limits: DecodeLimits, metrics: Metrics) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size.max(1))),
            limits,
            metrics,
        }
    }

    /// Model input for every image, in order; the first failing image (in order) is the error.
    pub async fn preprocess(&self, uploads: Vec<Upload>, pp: &Preprocessing) -> Result<Vec<Vec<f32>>, ApiError> {
        let pp = Arc::new(pp.clone());
        let jobs = uploads.into_iter().map(|upload| self.one(upload, Arc::clone(&pp)));
        futures::future::join_all(jobs).await.into_iter().collect()
    }

    async fn one(&self, upload: Upload, pp: Arc<Preprocessing>) -> Result<Vec<f32>, ApiError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the decode semaphore is never closed; this is a bug");
        let limits = self.limits;
        let duration = self.metrics.image_decode_duration_seconds.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the decode ends, even when the request that asked has gone.
            let _permit = permit;
            let _timer = duration.start_timer();
            let (label, bytes) = upload.into_bytes()?;
            preprocess(&bytes, &limits, &pp).map_err(|e| ApiError::from_preprocess(&label, e))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("image decode task failed: {e}")))?
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
        let err = Upload::base64("image_b".into(), ImageData { base64: "@@@".into() })
            .into_bytes()
            .unwrap_err();

        assert_eq!(err.code(), "invalid_base64");
        assert!(err.to_string().starts_with("image_b "), "{err}");
    }
}
