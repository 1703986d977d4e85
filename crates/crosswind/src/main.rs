//! The crosswind binary: parses the command line and runs one command.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid config (README).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use crosswind::cli;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `crosswind explain X | head -1`: the reader is gone, nothing to report.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            crosswind::output::note(format_args!("crosswind: {err:#}"));
            ExitCode::from(err.exit_code())
        }
    }
}
