//! A JSON Web Key Set as the validator reads it (key types, sizes, encodings). Run:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run jwks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    b2c_token::fuzzing::jwks(data);
});
