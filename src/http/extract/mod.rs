//! Reading requests: the image-request extractor (multipart or JSON under the same limits), the JSON forms
//! of an image, optional JSON bodies, counts, and the bytes `--keep-images` keeps.

pub(crate) mod count;
pub(crate) mod images;
pub(crate) mod input;
pub(crate) mod json;
pub(crate) mod kept;
pub(crate) mod request;
