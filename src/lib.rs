//! Parent Connection: the backend that connects teachers with the parents and guardians of
//! their students.
//!
//! Organised by capability: [`sync`] ingests SIS files, [`contacts`] reads them back,
//! [`tenants`] holds districts and settings, [`api`] and [`server`] serve HTTP, [`cli`] is
//! the command line; [`domain`] has the parse-don't-validate newtypes and [`entities`] the
//! table shapes. The benchmarks are not part of the product: they are the workspace's
//! `parent-connection-bench` binary (`bench/`), with what they share with the tests in
//! `parent-connection-testkit` (`testkit/`).

pub mod api;
pub mod approvals;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod chats;
pub mod checks;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod db;
pub mod digest;
pub mod domain;
pub mod entities;
pub mod guardians;
pub mod i18n;
pub mod invites;
pub mod links;
pub mod outbound;
pub mod outbox;
pub mod privacy;
pub mod restrictions;
pub mod roster;
pub mod secrets;
pub mod server;
pub mod sync;
pub mod tenants;
pub mod tls;
pub mod web;

/// The memory allocator of the product's binaries (and of the benchmarks, which measure
/// them): mimalloc. glibc's allocator was ≈ 20% of the digest dispatcher's CPU (its arenas
/// and locks across the runtime's threads); docs/performance.md "The allocator". Every
/// binary calls [`configure_allocator`] first.
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's `purge_delay` option (its `mi_option_e`, the same index in versions 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's defaults: memory freed in whole pages goes back to the system at
/// once. With mimalloc's default delay the pages the import's reading freed stayed resident
/// through the apply (peak 345 MiB against glibc's 285 MiB at 1,000,000 students, and
/// 285 MiB again with this; no change in time or digest throughput, measured). The
/// environment (`MIMALLOC_PURGE_DELAY`) still overrides it.
pub fn configure_allocator() {
    // SAFETY: sets a default option value; mimalloc reads options atomically and allows
    // this at any time.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 0) }
}
