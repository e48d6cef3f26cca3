//! The image-request extractor: one request type read from EITHER `multipart/form-data` OR JSON (images as
//! `{"base64": ...}` or `{"url": ...}`), under the same limits, every failure an `ApiError` (never axum's
//! plain-text rejections).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::http::extract::images::ImageData;
use crate::http::extract::request::ImageRequest;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

/// The checked input of the request `R`, whichever form it came in.
pub(crate) struct ImageInput<R: ImageRequest>(pub R::Input);

/// A multipart field a request accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// One image file.
    Image,
    /// Repeated image files, in order; at most `max_images`.
    Images,
    /// A short text value.
    Text,
}

/// Longest multipart text value (a model name, a threshold); anything longer is not one of those.
const MAX_TEXT_FIELD: usize = 1024;

/// Bounds on what one request may carry, beyond the body limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputLimits {
    pub max_images: usize,
}

impl InputLimits {
    /// Refuses a list of more than `max_images`.
    pub(crate) fn check_count(&self, count: usize) -> Result<(), ApiError> {
        if count > self.max_images {
            return Err(ApiError::TooManyImages {
                count,
                max: self.max_images,
            });
        }
        Ok(())
    }
}

/// The multipart fields of one request, by name.
#[derive(Debug, Default)]
pub(crate) struct Form {
    images: HashMap<&'static str, Vec<Bytes>>,
    text: HashMap<&'static str, String>,
}

impl Form {
    /// The single file part `name`, if it came.
    pub(crate) fn file(&mut self, name: &str) -> Option<Bytes> {
        self.images.remove(name).and_then(|mut parts| parts.pop())
    }

    /// The repeated file parts `name`, in the order sent; empty when none came.
    pub(crate) fn files(&mut self, name: &str) -> Vec<Bytes> {
        self.images.remove(name).unwrap_or_default()
    }

    pub(crate) fn text(&mut self, name: &str) -> Option<String> {
        self.text.remove(name)
    }
}

impl<R> FromRequest<AppState> for ImageInput<R>
where
    R: ImageRequest + Send,
    R::Input: Send,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limits = InputLimits {
            max_images: state.config().max_images as usize,
        };
        let body_limit = state.config().body_limit;
        match body_kind(&req)? {
            BodyKind::Json => {
                let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::BodyTooLarge { limit: body_limit }
                    } else {
                        ApiError::UnreadableBody(rejection.body_text())
                    }
                })?;
                parse_json::<R>(&bytes)?.validate(&limits).map(ImageInput)
            }
            BodyKind::Multipart => {
                let multipart = Multipart::from_request(req, state)
                    .await
                    .map_err(|rejection| ApiError::MalformedMultipart(rejection.body_text()))?;
                let form = read_form(multipart, R::FIELDS, &limits, body_limit).await?;
                R::from_form(form)?.validate(&limits).map(ImageInput)
            }
        }
    }
}

enum BodyKind {
    Json,
    Multipart,
}

/// What the `Content-Type` header says the body is; anything but the two forms is 415.
fn body_kind(req: &Request) -> Result<BodyKind, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = declared
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(BodyKind::Json),
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => Ok(BodyKind::Json),
        Some("multipart/form-data") => Ok(BodyKind::Multipart),
        _ => Err(ApiError::UnsupportedMediaType(match declared {
            // Quoted through Debug so that control characters in a hostile header cannot reach the log raw.
            Some(v) => format!("{:?}", truncate(&v, 100)),
            None => "(none)".to_string(),
        })),
    }
}

/// Syntax errors (including an empty or cut-off body) are 400; well-formed JSON of the wrong shape is 422.
pub(crate) fn parse_json<J: DeserializeOwned>(bytes: &[u8]) -> Result<J, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidRequest(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

/// Reads every part, refusing unknown or repeated fields and too many images as soon as they appear.
pub(crate) async fn read_form(
    mut multipart: Multipart,
    fields: &'static [Field],
    limits: &InputLimits,
    body_limit: usize,
) -> Result<Form, ApiError> {
    let body_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge { limit: body_limit }
        } else {
            ApiError::MalformedMultipart(e.body_text())
        }
    };
    let mut form = Form::default();
    while let Some(part) = multipart.next_field().await.map_err(body_error)? {
        let name = part.name().unwrap_or_default().to_string();
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            let expected: Vec<&str> = fields.iter().map(|f| f.name).collect();
            return Err(ApiError::InvalidRequest(format!(
                "unknown multipart field {:?}; the fields are: {}",
                truncate(&name, 100),
                expected.join(", ")
            )));
        };
        let bytes = part.bytes().await.map_err(body_error)?;
        match field.kind {
            FieldKind::Image | FieldKind::Images => {
                let parts = form.images.entry(field.name).or_default();
                if field.kind == FieldKind::Image && !parts.is_empty() {
                    return Err(ApiError::InvalidRequest(format!("field {name:?} was sent twice")));
                }
                parts.push(bytes);
                limits.check_count(parts.len())?;
            }
            FieldKind::Text => {
                if bytes.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::InvalidRequest(format!(
                        "field {name:?} is longer than {MAX_TEXT_FIELD} bytes"
                    )));
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::InvalidRequest(format!("field {name:?} is not UTF-8 text")))?;
                if form.text.insert(field.name, text).is_some() {
                    return Err(ApiError::InvalidRequest(format!("field {name:?} was sent twice")));
                }
            }
        }
    }
    Ok(form)
}

/// At most `max_chars` of `s`: enough of a bad value to recognise it in an error, never all of a hostile one.
pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// A JSON image field that must be there.
pub(crate) fn required_image(name: &str, image: Option<ImageData>) -> Result<Upload, ApiError> {
    image
        .map(|image| image.into_upload(name.to_string()))
        .ok_or_else(|| ApiError::MissingImage(format!("the {name} image is missing")))
}

/// A JSON image list, labelled `name[i]`, within the per-request limit.
pub(crate) fn image_list(name: &str, images: Vec<ImageData>, limits: &InputLimits) -> Result<Vec<Upload>, ApiError> {
    limits.check_count(images.len())?;
    Ok(images
        .into_iter()
        .enumerate()
        .map(|(i, image)| image.into_upload(format!("{name}[{i}]")))
        .collect())
}

/// A requested model name; an empty or blank one means the default, in either form.
pub(crate) fn parse_model(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_syntax_is_400_and_shape_is_422() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Shape {
            a: u32,
        }

        assert_eq!(parse_json::<Shape>(b"{\"a\":").unwrap_err().code(), "malformed_json");
        assert_eq!(parse_json::<Shape>(b"").unwrap_err().code(), "malformed_json");
        assert_eq!(
            parse_json::<Shape>(b"{\"a\":\"x\"}").unwrap_err().code(),
            "invalid_request"
        );
    }

    #[test]
    fn image_lists_over_the_limit_are_refused() {
        let limits = InputLimits { max_images: 2 };
        let images = || ImageData::Base64(crate::http::extract::images::ImageBase64 { base64: String::new() });

        let err = image_list("images", vec![images(), images(), images()], &limits).unwrap_err();

        assert_eq!(err.code(), "too_many_images");
    }
}
