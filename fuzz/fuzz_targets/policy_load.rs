//! Fuzz target: the policy-file loader, bytes → UTF-8 → `mxsim_policy::registry::load_file`.
//!
//! Any input must load or be refused with diagnostics; never panic, hang or blow the memory
//! budget. Refusals are rendered too, so the snippet renderer sees the same hostile text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxsim_policy::registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match registry::load_file(text) {
        Ok(settings) => {
            std::hint::black_box(&settings);
        }
        Err(diagnostics) => {
            let rendered = diagnostics.render("fuzz.yaml", text);
            assert!(
                !rendered.is_empty(),
                "a refused policy renders no diagnostic"
            );
        }
    }
});
