//! Assignments of a class (SPEC §2, §6): what the weekly digest lists. Loaded by the class
//! owner or an integration through the API ([`crate::api::assignments`]) or in bulk from a
//! CSV file ([`import`]); an idempotent upsert keyed by (tenant, class, external id).
//! Deleting removes the row. The per-class digest opt-out lives here too.

pub(crate) mod fields;
pub(crate) mod import;
pub(crate) mod store;

pub use fields::{FieldError, NewAssignment};
pub use import::{ImportReport, ImportStatus, run as import_file};
pub use store::{AssignmentItem, Upserted, upsert};
