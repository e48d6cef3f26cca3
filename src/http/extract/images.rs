//! The forms of an image in a request (`{"base64": ...}` or `{"url": ...}` in JSON, a file part in a
//! multipart form), and what each becomes: an [`Upload`] for the embedding service.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::infer::Upload;

/// An image inside a JSON request: its bytes in base64, or a URL the service fetches (when started with
/// `--allow-url-inputs`).
#[derive(Debug, Deserialize, ToSchema)]
// `untagged` shapes the schema (one of the two objects); `try_from` reads it, so that a wrong shape gets
// a clear message rather than serde's "did not match any variant".
#[serde(untagged, try_from = "ImageFields")]
pub(crate) enum ImageData {
    Base64(ImageBase64),
    Url(ImageUrl),
    /// A multipart file part: never read from JSON, hence not in its schema.
    #[serde(skip)]
    File(bytes::Bytes),
}

/// An image as base64.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageBase64 {
    /// The image file (PNG, JPEG, WebP, GIF or BMP), base64-encoded with the standard alphabet; padding is
    /// optional and a `data:image/...;base64,` prefix is accepted.
    // The example is a whole 1x1 grey PNG, so that a client trying it gets an answer, not an error.
    #[schema(
        format = Byte,
        content_media_type = "image/*",
        min_length = 4,
        example = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="
    )]
    pub base64: String,
}

/// An image by URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageUrl {
    /// An http or https URL of the image file, fetched by the service when it runs with
    /// `--allow-url-inputs`: public addresses and allowed ports only, at most 3 redirects, within the
    /// body limit and the fetch timeout. The format is read from the bytes, as for uploads.
    #[schema(min_length = 1, example = "https://example.com/images/product.jpg")]
    pub url: String,
}

/// Both forms' fields, as serde reads them before one is chosen.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFields {
    base64: Option<String>,
    url: Option<String>,
}

impl TryFrom<ImageFields> for ImageData {
    type Error = &'static str;

    fn try_from(fields: ImageFields) -> Result<Self, Self::Error> {
        match (fields.base64, fields.url) {
            (Some(base64), None) => Ok(Self::Base64(ImageBase64 { base64 })),
            (None, Some(url)) => Ok(Self::Url(ImageUrl { url })),
            _ => Err("an image is either {\"base64\": \"...\"} or {\"url\": \"...\"}, with exactly one of the two"),
        }
    }
}

impl ImageData {
    /// The image as the embedding service takes it, named `label` in any error about it.
    pub(crate) fn into_upload(self, label: String) -> Upload {
        match self {
            ImageData::Base64(image) => Upload::base64(label, image.base64),
            ImageData::Url(image) => Upload::url(label, image.url),
            ImageData::File(bytes) => Upload::raw(label, bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_image_is_base64_or_a_url_never_both_nor_neither() {
        let parse = |text: &str| serde_json::from_str::<ImageData>(text);

        assert!(matches!(parse(r#"{"base64": "aGk="}"#), Ok(ImageData::Base64(_))));
        assert!(matches!(
            parse(r#"{"url": "https://example.com/a.png"}"#),
            Ok(ImageData::Url(_))
        ));
        for bad in [
            r#"{"base64": "aGk=", "url": "https://x/"}"#,
            "{}",
            r#"{"path": "/etc/passwd"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
