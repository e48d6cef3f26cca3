//! JSON and multipart request bodies through the endpoints' input extractors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: simverify::fuzzing::remember_panics(),
    |data: &[u8]| simverify::fuzzing::run(simverify::fuzzing::request, data)
);
