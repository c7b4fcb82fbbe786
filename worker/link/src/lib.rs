//! Link arguments for every binary that carries libtorch.
//!
//! `torch-sys` tells its direct dependents where libtorch lives through the
//! `DEP_TCH_LIBTORCH_LIB` variable. Binaries built from such a package need two
//! things that cargo does not give them: an rpath to that folder, so they run
//! without `LD_LIBRARY_PATH`, and a hard dependency on `libtorch_cuda.so`, which
//! the default `--as-needed` link drops because no symbol of ours names it.
//! Without that library loaded libtorch never registers its CUDA backend.

use std::path::Path;

/// Prints the cargo instructions that add the rpath and force `libtorch_cuda` in.
///
/// Call it from the build script of a package that depends on `torch-sys`.
pub fn emit_link_args() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB is unset; binaries will need LD_LIBRARY_PATH");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");

    let has_cuda = Path::new(&lib_dir).join("libtorch_cuda.so").exists();
    if has_cuda {
        println!("cargo:rustc-link-arg=-L{lib_dir}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
