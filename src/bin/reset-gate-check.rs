//! Checks a reset-gate configuration with the same code the filter runs in `on_configure`.
//!
//! Usage: `reset-gate-check FILE` (or `-` for standard input). Exit status 0 when the
//! configuration is valid, 1 when it is not, 2 when the file cannot be read.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: reset-gate-check CONFIG.json   (use - for standard input)");
        return ExitCode::from(2);
    };
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(&path).map(|b| bytes = b)
    };
    if let Err(e) = read {
        eprintln!("reset-gate-check: cannot read {path}: {e}");
        return ExitCode::from(2);
    }
    match reset_gate::config::Settings::from_json(&bytes) {
        Ok(s) => {
            println!(
                "ok: {} path(s), provider cluster `{}` at `{}`, default connection `{}`",
                s.paths.len(),
                s.provider.cluster,
                s.provider.authority,
                s.connections.default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            ExitCode::from(1)
        }
    }
}
