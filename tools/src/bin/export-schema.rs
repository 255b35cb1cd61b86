//! Prints the gateway's API as generated from its registry, without starting a server.
//!
//! ```sh
//! cargo run -p kapable-tools --bin export-schema -- openapi > openapi.json
//! cargo run -p kapable-tools --bin export-schema -- tools      # one line per MCP tool
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("openapi") => {
            let document = kapable_comms::http::openapi_document();
            println!("{}", serde_json::to_string_pretty(&document).expect("JSON serializes"));
        }
        Some("tools") => {
            let ops = kapable_comms::ops::all();
            for op in ops {
                println!(
                    "{:<18} {:<7} {:<48} {}",
                    op.name,
                    op.method.as_str(),
                    op.path,
                    op.callers.describe()
                );
            }
            eprintln!("{} operations, each an MCP tool and a REST route", ops.len());
        }
        _ => {
            eprintln!("usage: export-schema openapi|tools");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
