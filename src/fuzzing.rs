//! The untrusted-input paths of the server, callable without one: what the `cargo fuzz` targets in `fuzz/`
//! and the regression test that replays their corpus (`tests/api/fuzz_regressions.rs`) drive. Not an API.
//!
//! Both entry points must return for any input without panicking: an error is an answer (a 4xx), a
//! panic or a hang is the bug the fuzzer looks for.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{header, Request};

use crate::http::extract::input::{parse_json, read_form, InputLimits};
use crate::http::extract::request::ImageRequest;
use crate::http::problem::error::ApiError;
use crate::http::routes::compare::CompareRequest;
use crate::http::routes::embed::EmbedRequest;
use crate::http::routes::search::SearchRequest;
use crate::http::routes::verify::VerifyRequest;
use crate::infer::decode_base64;
use crate::model::Preprocessing;
use crate::preprocess::{decode_target, jpeg, preprocess, DecodeLimits};

thread_local! {
    /// The message of the last panic on this thread, kept by [`remember_panics`]'s hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces libfuzzer's panic hook, which aborts at once, with one that only remembers the message: the
/// service catches decoder panics and answers `undecodable` (see `preprocess::decode`), and those are not
/// crashes. Call once, from a target's `init`.
pub fn remember_panics() {
    std::panic::set_hook(Box::new(|info| {
        LAST_PANIC.with(|last| *last.borrow_mut() = Some(info.to_string()));
    }));
}

/// Runs `target` on one fuzz input: a panic that escapes it (one the service would not have caught)
/// prints its message and aborts, which libfuzzer records as a crash.
pub fn run<R>(target: fn(&[u8]) -> R, data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
        let message = LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_default();
        eprintln!("uncaught panic: {message}");
        std::process::abort();
    }
}

/// The multipart boundary of [`request`] bodies; seeds spell their parts with it.
pub const BOUNDARY: &str = "simverify-fuzz";

/// Small enough that one input costs milliseconds, not the server's seconds: what the fuzzer explores is
/// the header and limit checks and the decoders' error paths, which do not depend on the bound.
const LIMITS: DecodeLimits = DecodeLimits {
    max_width: 2048,
    max_height: 2048,
    max_pixels: 1 << 20,
    max_alloc: 64 << 20,
};

/// Image bytes through what the decode pool does with an upload (sniff, limits, decode, preprocess),
/// under both shipped cards' preprocessing; and, when the bytes are text, the JSON form's base64 first.
/// Whether the bytes were a usable image.
pub fn image(data: &[u8]) -> bool {
    let mut usable = true;
    for pp in CARDS.iter() {
        match preprocess(data, &LIMITS, pp) {
            Ok(input) => assert_eq!(input.len(), pp.color.channels() * (pp.width * pp.height) as usize),
            Err(_) => usable = false,
        }
        // `jpeg-decoder`'s reduced scale only runs on progressive or CMYK photos of 10 megapixels in the
        // server; here on every JPEG, so that its header checks and fallbacks are explored too.
        let _ = jpeg::decode_with(data, &LIMITS, decode_target(pp), 0);
    }
    if let Ok(Ok(bytes)) = std::str::from_utf8(data).map(decode_base64) {
        for pp in CARDS.iter() {
            let _ = preprocess(&bytes, &LIMITS, pp);
        }
    }
    usable
}

/// A request body read as one endpoint's input: the first byte picks the endpoint (low bits) and the form
/// (high bit: multipart with [`BOUNDARY`], else JSON), the rest is the body. Whether it was a valid input.
pub fn request(data: &[u8]) -> bool {
    let Some((&selector, body)) = data.split_first() else {
        return false;
    };
    let multipart = selector & 0x80 != 0;
    match (selector & 0x7f) % 4 {
        0 => read::<CompareRequest>(body, multipart),
        1 => read::<EmbedRequest>(body, multipart),
        2 => read::<VerifyRequest>(body, multipart),
        _ => read::<SearchRequest>(body, multipart),
    }
}

fn read<R: ImageRequest>(body: &[u8], multipart: bool) -> bool {
    // A handful of images: the count limit is exercised without every input carrying 32.
    let limits = InputLimits { max_images: 4 };
    let read: Result<R::Input, ApiError> = if multipart {
        let request = Request::builder()
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(body.to_vec()))
            .expect("a request of constant parts is valid");
        // The body is all in memory, so the extractor's futures never wait on I/O and need no runtime.
        futures::executor::block_on(async {
            let form = Multipart::from_request(request, &())
                .await
                .map_err(|rejection| ApiError::MalformedMultipart(rejection.body_text()))?;
            let form = read_form(form, R::FIELDS, &limits, usize::MAX).await?;
            R::from_form(form)?.validate(&limits)
        })
    } else {
        parse_json::<R>(body).and_then(|request| request.validate(&limits))
    };
    read.is_ok()
}

/// The preprocessing of both shipped models, read from their committed cards: MNIST digits (grayscale,
/// fitted to the strokes) and product photos (RGB, letterboxed), which take different paths through
/// `prepare`.
static CARDS: LazyLock<[Preprocessing; 2]> = LazyLock::new(|| {
    let card = |json: &str| {
        let card: serde_json::Value = serde_json::from_str(json).expect("a committed model card is JSON");
        serde_json::from_value(card["preprocessing"].clone()).expect("a committed model card's preprocessing")
    };
    [
        card(include_str!("../models/mnist/model.json")),
        card(include_str!("../models/product/model.json")),
    ]
});
