//! Fuzz target: the scenario loader, bytes → UTF-8 → `mxsim_model::scenario::load`.
//!
//! Any input must load or be refused with diagnostics; never panic, hang or blow the memory
//! budget. Refusals are rendered too, so the snippet renderer sees the same hostile text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxsim_model::scenario;
use mxsim_policy::registry;

fuzz_target!(|data: &[u8]| {
    // The CLI refuses non-UTF-8 files before the loader sees them.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scenario::load(text, &registry::is_known) {
        Ok(scenario) => {
            std::hint::black_box(&scenario);
        }
        Err(diagnostics) => {
            let rendered = diagnostics.render("fuzz.yaml", text);
            assert!(
                !rendered.is_empty(),
                "a refused scenario renders no diagnostic"
            );
        }
    }
});
