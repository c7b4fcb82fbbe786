//! How the coordinator and worker processes end: on an error, one line with its causes on
//! stderr and exit status 1, as the `deepstyle` command does.

use std::process::ExitCode;

/// Turns `main`'s result into its exit status, printing an error as `error: <causes>`.
///
/// Returning the error from `main` instead would print its `Debug` form, which carries a
/// backtrace whenever `RUST_BACKTRACE` is set.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
