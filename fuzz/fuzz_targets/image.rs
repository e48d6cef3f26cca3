//! Untrusted image bytes through the server's decode path: sniff, limits, decode, preprocess.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: simverify::fuzzing::remember_panics(),
    |data: &[u8]| simverify::fuzzing::run(simverify::fuzzing::image, data)
);
