//! Arbitrary bytes through the `codex_exec` importer's whole line loop (see `shopfloor_fuzz::import_bytes`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shopfloor_fuzz::import_bytes(shopfloor::trace::Format::CodexExec, data);
});
