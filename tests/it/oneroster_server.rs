//! The OneRoster 1.1 test provider lives in the testkit (`parent_connection_testkit::
//! oneroster`), shared with `parent-connection-bench oneroster`; the tests use it from here.

pub use parent_connection_testkit::oneroster::*;
