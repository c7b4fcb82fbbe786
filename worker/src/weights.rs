//! Where the converted VGG19 weights are found.

use std::path::{Path, PathBuf};

/// The environment variable that names the weights file.
pub const WEIGHTS_ENV: &str = "DEEPSTYLE_WEIGHTS";

/// The weights file's path relative to a checkout, as `scripts/setup.sh` writes it.
pub const WEIGHTS_RELATIVE_PATH: &str = "models/vgg19_normalised.safetensors";

/// Returns the weights path: `$DEEPSTYLE_WEIGHTS`, else the first `models/vgg19_normalised.safetensors`
/// found in the working directory or above the running executable, else that relative path.
pub fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os(WEIGHTS_ENV) {
        return PathBuf::from(path);
    }
    let mut bases: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if let Ok(exe) = std::env::current_exe() {
        bases.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    bases
        .iter()
        .map(|base| base.join(WEIGHTS_RELATIVE_PATH))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(WEIGHTS_RELATIVE_PATH))
}
