//! sea-orm entities: table shapes only, no logic. Bulk sync work uses set-based SQL over the
//! same tables (see `sync::reconcile`).

pub mod audit_log;
pub mod sync_run;
pub mod tenant;
pub mod tenant_settings;
