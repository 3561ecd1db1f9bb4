//! Fuzzing and property tests of every parser that reads hostile input (RELIABILITY.md,
//! "Fuzzing and hostile input"): the SDS v1 and v2.1 readers through the import entry, phone
//! and email parsing, the API's JSON bodies, multipart and zip uploads, and the OneRoster
//! JSON mapping through a sync against a provider on loopback. Each target runs seeded
//! `proptest` cases and asserts: no panic, the documented error shape, and bounded memory
//! (a counting allocator: the peak allocated while one input is handled stays under a
//! stated bound relative to the input's size). [`corpus`] replays the checked-in hostile
//! files of `tests/corpus/hostile/`.
//!
//! `FUZZ_CASES=N` runs N cases per target (the defaults keep CI short); `FUZZ_SEED=N`
//! changes the seed (the default seed is fixed, so a CI failure reproduces).
//!
//! Its own test binary so that its `#[global_allocator]` counts only this harness; the
//! targets run one at a time ([`alloc::exclusive`]) so the measurements are not mixed.

#[path = "../it/api_support.rs"]
mod api_support;
#[path = "../it/support.rs"]
mod support;

mod alloc;
mod api_json;
mod budget;
mod corpus;
mod oneroster;
mod sds;
mod text;
mod uploads;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
