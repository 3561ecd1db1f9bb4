//! What the tests (`tests/it`) and the benchmarks (`parent-connection-bench`) of Parent
//! Connection share, so it exists once:
//!
//! - [`generate`]: a seeded synthetic SDS v2.1 district (and its re-sync variant) at any
//!   scale, with [`rng`], the deterministic generator behind it;
//! - [`pg`]: a fresh PostgreSQL database per run, created and dropped from an admin URL;
//! - [`proxy`]: a loopback TCP proxy that passes, refuses, hangs or cuts connections on
//!   command (faults of the database, SMTP, the SMS gateway, a OneRoster provider);
//! - [`oneroster`]: a OneRoster 1.1 provider on loopback (paging, delta filter, faults),
//!   serving JSON records or the [`generate`] district page by page;
//! - [`smtp`]: an in-process SMTP sink on loopback that counts what it accepts and answers
//!   with injected faults or a script of replies;
//! - [`crash`]: the crash harness (SIGKILL at a seeded point of an import, an approval, a
//!   digest run or a dispatch, then the checks), run by the `crash` binary and the tests;
//! - [`free_port`]: a free TCP port on loopback.
//!
//! Not part of the product: the shipped `parent-connection` binary does not link it.

pub mod crash;
pub mod generate;
pub mod oneroster;
pub mod pg;
pub mod proxy;
pub mod rng;
pub mod smtp;

/// A free TCP port on loopback (free when asked: bind it soon).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
