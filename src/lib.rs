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
pub mod invites;
pub mod links;
pub mod outbound;
pub mod outbox;
pub mod privacy;
pub mod roster;
pub mod secrets;
pub mod server;
pub mod sync;
pub mod tenants;
pub mod tls;
pub mod web;
