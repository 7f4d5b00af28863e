use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = repave::commands::Cli::parse();
    repave::commands::init_logging(cli.verbose, cli.quiet);
    match repave::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
