//! One declaration per image request. [`image_request!`] turns a struct of fields into the JSON type
//! (serde, `deny_unknown_fields`), its OpenAPI schema (utoipa, with the field attributes as written), the
//! multipart form that carries the same fields (its parts known by name, each read by the field's type,
//! and its schema derived from the JSON one) and, through [`ImageRequest::validate`], the checked input the
//! handler uses: both forms of a request meet the same checks, once.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::http::extract::count::count_from_text;
use crate::http::extract::images::ImageData;
use crate::http::extract::input::{truncate, Field, FieldKind, Form, InputLimits};
use crate::http::problem::error::ApiError;

/// A request read from JSON or from a multipart form into the same type, then checked.
pub(crate) trait ImageRequest: DeserializeOwned + FormRequest {
    /// What the handler works with.
    type Input;

    fn validate(self, limits: &InputLimits) -> Result<Self::Input, ApiError>;
}

/// The multipart side of a request, written by [`image_request!`].
pub(crate) trait FormRequest: Sized {
    /// The parts the form knows; any other is refused.
    const FIELDS: &'static [Field];
    /// Two fields of which a request sends exactly one (the schemas say so; `validate` checks it).
    const EXACTLY_ONE_OF: Option<(&'static str, &'static str)>;

    fn from_form(form: Form) -> Result<Self, ApiError>;
}

/// How a field's type is read from a multipart form.
pub(crate) trait FormPart: Sized {
    const KIND: FieldKind;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError>;
}

impl FormPart for Option<ImageData> {
    const KIND: FieldKind = FieldKind::Image;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        Ok(form.file(name).map(ImageData::File))
    }
}

impl FormPart for Vec<ImageData> {
    const KIND: FieldKind = FieldKind::Images;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        Ok(form.files(name).into_iter().map(ImageData::File).collect())
    }
}

/// A list that may be left out: no part at all is an absent list.
impl FormPart for Option<Vec<ImageData>> {
    const KIND: FieldKind = FieldKind::Images;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        let files = Vec::<ImageData>::take(form, name)?;
        Ok((!files.is_empty()).then_some(files))
    }
}

impl FormPart for Option<String> {
    const KIND: FieldKind = FieldKind::Text;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        Ok(form.text(name))
    }
}

/// A list of short texts travels as one part, comma-separated (blanks dropped).
impl FormPart for Option<Vec<String>> {
    const KIND: FieldKind = FieldKind::Text;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        Ok(form.text(name).map(|text| {
            text.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }))
    }
}

impl FormPart for Option<bool> {
    const KIND: FieldKind = FieldKind::Text;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        match form.text(name).as_deref().map(str::trim) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::InvalidRequest(format!(
                "{name} must be true or false, got {:?}",
                truncate(other, 20)
            ))),
        }
    }
}

/// Counts (`k`, `page`, ...): a whole number, checked against its range by `validate`.
impl FormPart for Option<u64> {
    const KIND: FieldKind = FieldKind::Text;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        form.text(name)
            .map(|text| {
                count_from_text(&text)
                    .ok_or_else(|| ApiError::InvalidRequest(format!("{name} must be a whole number >= 0")))
            })
            .transpose()
    }
}

/// A threshold override. Its fields' schemas say `minimum` 0 and `maximum` the largest `f32`: a larger
/// number would be read as infinity and refused. (Requests only: an answer's `f32`, printed shortest, may
/// round above that maximum.)
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub(crate) struct Threshold(f32);

impl Threshold {
    /// Any finite number >= 0 (distances are never negative).
    pub(crate) fn check(threshold: Option<Self>) -> Result<Option<f32>, ApiError> {
        match threshold {
            Some(Self(t)) if !t.is_finite() || t < 0.0 => Err(ApiError::InvalidThreshold(t.to_string())),
            other => Ok(other.map(|Self(t)| t)),
        }
    }
}

impl FormPart for Option<Threshold> {
    const KIND: FieldKind = FieldKind::Text;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        let Some(text) = form.text(name) else { return Ok(None) };
        text.trim()
            .parse::<f32>()
            .map(|t| Some(Threshold(t)))
            .map_err(|_| ApiError::InvalidThreshold(format!("{:?}", truncate(&text, 40))))
    }
}

/// Declares an image request once; see the module's documentation. `exactly_one_of(a, b)` marks two
/// fields of which a request sends exactly one.
macro_rules! image_request {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident / $form:ident $(, exactly_one_of($one:ident, $other:ident))? {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $( $(#[$field_meta])* $field_vis $field: $ty, )*
        }

        impl $crate::http::extract::request::FormRequest for $name {
            const FIELDS: &'static [$crate::http::extract::input::Field] = &[$(
                $crate::http::extract::input::Field {
                    name: stringify!($field),
                    kind: <$ty as $crate::http::extract::request::FormPart>::KIND,
                },
            )*];
            const EXACTLY_ONE_OF: Option<(&'static str, &'static str)> =
                $crate::http::extract::request::image_request!(@pair $($one, $other)?);

            fn from_form(
                mut form: $crate::http::extract::input::Form,
            ) -> Result<Self, $crate::http::problem::error::ApiError> {
                Ok(Self {
                    $( $field: $crate::http::extract::request::FormPart::take(&mut form, stringify!($field))?, )*
                })
            }
        }

        #[doc = concat!("`", stringify!($name), "` as `multipart/form-data`; its schema is derived from the JSON one.")]
        $vis struct $form;

        impl utoipa::PartialSchema for $form {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::http::openapi::form_schema::form_schema::<$name>()
            }
        }

        impl utoipa::ToSchema for $form {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($form).into()
            }

            fn schemas(
                schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
            ) {
                use $crate::http::openapi::document::ImageFile;
                schemas.push((
                    <ImageFile as utoipa::ToSchema>::name().into(),
                    <ImageFile as utoipa::PartialSchema>::schema(),
                ));
            }
        }
    };
    (@pair $one:ident, $other:ident) => { Some((stringify!($one), stringify!($other))) };
    (@pair) => { None };
}

pub(crate) use image_request;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_must_be_finite_and_not_negative() {
        assert_eq!(Threshold::check(Some(Threshold(0.0))).unwrap(), Some(0.0));
        assert_eq!(Threshold::check(Some(Threshold(0.75))).unwrap(), Some(0.75));
        for bad in [-0.1, f32::NAN, f32::INFINITY] {
            let err = Threshold::check(Some(Threshold(bad))).unwrap_err();
            assert_eq!(err.code(), "invalid_threshold", "{bad}");
        }
    }
}
