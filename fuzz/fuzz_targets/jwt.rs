//! A bearer token as the validator takes it apart: size, shape, header, claims (duplicate keys,
//! `crit`), before any key. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run jwt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    b2c_token::fuzzing::jwt(data);
});
