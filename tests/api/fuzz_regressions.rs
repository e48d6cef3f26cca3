//! Replays the fuzz targets' regression corpus (`fuzz/regressions/<target>/`, every crash or timeout the
//! fuzzer found, plus a seed so that it is never empty) and the hand-written seeds (`fuzz/seeds/<target>/`)
//! through the same functions the targets call, on stable in every `cargo test`: a fixed bug stays fixed
//! without a nightly toolchain or libFuzzer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use simverify::fuzzing;

/// Far above what any input takes (milliseconds, unoptimised); a timeout artifact that is still slow
/// fails here instead of hanging the suite for ever.
const BOUND: Duration = Duration::from_secs(20);

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["regressions", "seeds"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|entry| entry.expect("a readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Replays every input of `target`; the hand-written seeds must also be accepted, or the fuzzer would
/// start from refusals only.
fn replay(target: &str, run: fn(&[u8]) -> bool) {
    let files = inputs(target);
    let regressions = files
        .iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "regressions"));
    assert!(
        regressions.count() > 0,
        "fuzz/regressions/{target}/ holds at least its seed"
    );
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let started = Instant::now();
        let accepted = run(&data);
        let took = started.elapsed();
        assert!(took < BOUND, "{} took {took:?}", file.display());
        let seed = file.components().any(|c| c.as_os_str() == "seeds");
        assert!(accepted || !seed, "the seed {} is refused", file.display());
    }
}

#[test]
fn image_regressions_decode_or_are_refused() {
    replay("image", fuzzing::image);
}

#[test]
fn request_regressions_parse_or_are_refused() {
    replay("request", fuzzing::request);
}
