//! Arbitrary bytes through `memory import` into a real (temp) store and index (see
//! `shopfloor_fuzz::import_memories`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (store, bank) = shopfloor_fuzz::memory_bank();
    shopfloor_fuzz::import_memories(store, bank, data);
});
