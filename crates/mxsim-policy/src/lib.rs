//! SMTP client policies: how a client picks among MX hosts and falls back from one to another.
//!
//! Module map:
//! - [`settings`]: every open choice as data.
//! - [`file`]: policy files (docs/policy-format.md) to settings, with located errors.
//! - [`engine`]: the one engine that runs any settings against the model's `World` traits.
//! - [`rust`]: a policy written directly in Rust against the traits.
//! - [`json_schema`]: the JSON Schema of policy files, from the loader's key tables.
//! - [`registry`]: policies by name: the preset files under `policies/` and the Rust ones.
//!
//! This crate never names a simulator type: its policies run in any `World`.

pub mod engine;
pub mod file;
pub mod json_schema;
pub mod registry;
pub mod rust;
pub mod settings;
