//! The `kapable-comms` binary: `serve` (the default), `admin`, `migrate` and `mcp-stdio`.

fn main() -> std::process::ExitCode {
    kapable_comms::cli::run()
}
