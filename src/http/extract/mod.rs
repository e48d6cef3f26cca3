//! Reading requests: the image-request extractor (multipart or JSON under the same limits), the JSON forms
//! of an image, and the bytes `--keep-images` keeps.

pub mod images;
pub mod input;
pub(crate) mod kept;
