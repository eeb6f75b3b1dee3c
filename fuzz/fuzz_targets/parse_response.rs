//! Token and error response parsing, Retry-After, JWT `exp`, B2C codes, scopes: everything
//! that reads bytes a server sent. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    b2c_token::fuzzing::response(data);
});
