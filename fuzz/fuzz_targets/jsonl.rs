//! Arbitrary bytes through the `jsonl` importer's whole line loop (see `shopfloor_fuzz::import_bytes`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shopfloor_fuzz::import_bytes(shopfloor::trace::Format::Jsonl, data);
});
