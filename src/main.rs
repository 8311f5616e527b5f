//! The `pigeon` binary: parse the command line, run the window or a headless subcommand, and
//! turn the outcome into an exit code (0 success, 1 the operation failed, 2 usage or start-up
//! error).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pigeon: {err:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
