//! Policies by name. Files under `policies/` will join the engine presets here; a policy
//! written in Rust against the traits registers beside them.

use mxsim_model::world::{Policy, World};

use crate::engine::Engine;
use crate::settings::Settings;

/// The names of every registered policy, in listing order.
pub fn names() -> Vec<&'static str> {
    vec!["rfc5321"]
}

/// True when `name` is registered.
pub fn is_known(name: &str) -> bool {
    names().contains(&name)
}

/// The policy called `name`, ready to run in any world.
pub fn get<W: World + 'static>(name: &str) -> Option<Box<dyn Policy<W>>> {
    match name {
        "rfc5321" => Some(Box::new(Engine {
            settings: Settings::rfc5321(),
        })),
        _ => None,
    }
}
