//! `tenant_settings`: one row per tenant.
use sea_orm::entity::prelude::*;

/// A tenant's settings.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    /// Tenant id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: i64,
    /// `email` or `sms`.
    pub preferred_invite_channel: String,
    /// Teachers may propose contact edits.
    pub update_parent_information: bool,
    /// Weekly digest switch.
    pub digest_enabled: bool,
    /// Share of active links a sync may deactivate without `--force`.
    pub deletion_guard_percent: i32,
    /// Remove guardians who stop being active contacts from chats, instead of a banner.
    pub auto_remove_inactive_guardians: bool,
    /// Invitations one guardian may receive per window.
    pub invite_limit_per_guardian: i32,
    /// The per-guardian window, in days.
    pub invite_window_days: i32,
    /// Invitations the tenant may send per UTC day.
    pub invite_limit_per_tenant_per_day: i32,
    /// Day of the weekly digest: `monday` … `sunday`.
    pub digest_day: String,
    /// Hour of the weekly digest, 0–23, in `digest_time_zone`.
    pub digest_hour: i32,
    /// IANA time zone of the digest schedule and windows.
    pub digest_time_zone: String,
    /// Days an invitation's join link stays valid.
    pub invitation_validity_days: i32,
    /// Last change (UTC).
    pub updated_at: DateTimeUtc,
    /// Start of the quiet hours, `HH:MM` local time, or null for none.
    #[sea_orm(column_type = "Text", nullable)]
    pub quiet_hours_start: Option<String>,
    /// End of the quiet hours, `HH:MM` local time, or null for none.
    #[sea_orm(column_type = "Text", nullable)]
    pub quiet_hours_end: Option<String>,
    /// The language of a guardian's messages when theirs has no translation (a shipped
    /// locale: `en`, `es`).
    #[sea_orm(column_type = "Text")]
    pub default_language: String,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
