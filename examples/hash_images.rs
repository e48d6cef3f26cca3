//! Our perceptual hashes of image files, for `scripts/hash-crosscheck` to hold against Python imagehash.
//!
//! `cargo run --release --example hash_images -- FILE...` prints `FILE PHASH DHASH` per file, each hash as 16
//! hex digits in imagehash's `str(hash)` order.

use anyhow::Context;
use simverify::train::hashes::{dhash, phash};

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!files.is_empty(), "usage: hash_images FILE...");
    for file in files {
        let image = image::open(&file).with_context(|| format!("reading {file}"))?.to_rgb8();
        println!("{file} {:016x} {:016x}", phash(&image), dhash(&image));
    }
    Ok(())
}
