//! `--keep-images`: the bytes of the images an enrolment stores beside their embeddings, taken from the
//! uploads before they are decoded (multipart files as sent; JSON base64 decoded once, here).

use axum::body::Bytes;

use crate::http::problem::error::ApiError;
use crate::infer::{decode_base64, Upload, UploadData};

/// Each upload's bytes, in order, and the uploads as raw files (so that base64 is decoded only once).
/// An image URL is refused: the bytes a URL names are fetched inside the decoder, out of reach here.
pub(crate) fn keep_bytes(uploads: Vec<Upload>) -> Result<(Vec<Upload>, Vec<Bytes>), ApiError> {
    let mut kept = Vec::with_capacity(uploads.len());
    let mut raw = Vec::with_capacity(uploads.len());
    for upload in uploads {
        let bytes = match upload.data {
            UploadData::Raw(bytes) => bytes,
            UploadData::Base64(text) => decode_base64(&text)
                .map_err(|reason| ApiError::InvalidBase64 {
                    field: upload.label.clone(),
                    reason,
                })?
                .into(),
            UploadData::Url(_) => {
                return Err(ApiError::UrlForbidden {
                    field: upload.label,
                    reason: "this server keeps enrolled images (--keep-images), which it does only for \
                             uploaded files and base64 images",
                })
            }
        };
        kept.push(bytes.clone());
        raw.push(Upload::raw(upload.label, bytes));
    }
    Ok((raw, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_base64_are_kept_as_bytes_and_urls_refused() {
        let uploads = vec![
            Upload::raw("images[0]".into(), Bytes::from_static(b"raw")),
            Upload::base64("images[1]".into(), "data:image/png;base64,aGk".into()),
        ];

        let (raw, kept) = keep_bytes(uploads).unwrap();

        assert_eq!(kept, [Bytes::from_static(b"raw"), Bytes::from_static(b"hi")]);
        assert!(matches!(&raw[1].data, UploadData::Raw(b) if b == "hi"));
        let url = Upload::url("images[0]".into(), "https://example.com/a.png".into());
        assert_eq!(keep_bytes(vec![url]).err().unwrap().code(), "url_forbidden");
        let bad = Upload::base64("images[0]".into(), "@@".into());
        assert_eq!(keep_bytes(vec![bad]).err().unwrap().code(), "invalid_base64");
    }
}
