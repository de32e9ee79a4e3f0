//! reset-gate: a proxy-wasm filter that owns `POST /dbconnections/change_password` at the edge.
//!
//! The crate is a pure core (parse → normalise → decide → describe the callout → map the answer)
//! plus, in the wasm build only, a thin host layer in `filter` and `host`. The core has no
//! proxy-wasm types in it and is tested natively.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod body;
pub mod case;
pub mod config;
pub mod connection;
pub mod email;
pub mod limit;
pub mod outcome;
pub mod provider;
pub mod reply;
pub mod request;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod host;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    filter::install();
}}
