//! Bakes libtorch's library directory into the binaries' rpath, so they run without `LD_LIBRARY_PATH`.

fn main() {
    // torch-sys publishes where it found libtorch through its `links = "tch"` metadata.
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
}
