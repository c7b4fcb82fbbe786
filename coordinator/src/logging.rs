//! Log set-up shared by the three binaries: `RUST_LOG` filtering (default `info`), lines or
//! JSON on request, always on stderr so that a command's stdout stays its output, coloured
//! only when stderr is a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber at `info` (or `RUST_LOG`); `json` switches to one
/// JSON object per line.
pub fn init(json: bool) {
    init_with_default(json, "info");
}

/// Installs the global tracing subscriber with `default` as the filter when `RUST_LOG` is
/// not set.
pub fn init_with_default(json: bool, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
