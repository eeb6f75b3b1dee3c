//! An OpenID discovery document: its fields, the issuer check, the token endpoint. Run:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    b2c_token::fuzzing::metadata(data);
});
