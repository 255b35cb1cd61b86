//! The `kapable-comms` binary: `serve` (the default), `admin` and `migrate`.

fn main() -> std::process::ExitCode {
    kapable_comms::cli::run()
}
