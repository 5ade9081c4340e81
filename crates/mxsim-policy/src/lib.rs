//! SMTP client policies: how a client picks among MX hosts and falls back from one to another.
//!
//! Module map:
//! - [`settings`]: every open choice as data; [`settings::Settings::rfc5321`] is the baseline.
//! - [`engine`]: the one engine that runs any settings against the model's `World` traits.
//! - [`registry`]: policies by name.
//!
//! This crate never names a simulator type: its policies run in any `World`.

pub mod engine;
pub mod registry;
pub mod settings;
