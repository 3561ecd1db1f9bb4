//! Tenant settings as the API (`GET|PATCH /api/v1/settings`, camelCase) and the CLI
//! (`settings get|set`, kebab-case) see them: one list of keys, one parser per key, one
//! audited update.

use crate::audit::{self, AuditEntry};
use crate::db;
use crate::domain::{DigestDay, LocalTime, QuietHours, TenantId, TimeZoneName};
use crate::entities::tenant_settings;
use crate::outbox::Channel;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, Set,
};
use serde::Serialize;

/// A tenant's settings, parsed once from its `tenant_settings` row: every reader uses these
/// typed fields, none reads a settings column itself.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    /// The channel invitations use when a guardian has both.
    pub preferred_invite_channel: Channel,
    /// Teachers may propose contact edits.
    pub update_parent_information: bool,
    /// Weekly digest switch.
    pub digest_enabled: bool,
    /// Share of active links (percent, 0–100) a sync may deactivate without `--force`.
    pub deletion_guard_percent: i32,
    /// Remove guardians who stop being active contacts from chats, instead of a banner.
    pub auto_remove_inactive_guardians: bool,
    /// Invitations one guardian may receive per window.
    pub invite_limit_per_guardian: u32,
    /// The per-guardian window, in days.
    pub invite_window_days: u32,
    /// Invitations the tenant may send per UTC day.
    pub invite_limit_per_tenant_per_day: u32,
    /// Day of the weekly digest.
    pub digest_day: DigestDay,
    /// Hour of the weekly digest, 0–23, in `digest_time_zone`.
    pub digest_hour: u8,
    /// Time zone of the digest schedule and windows.
    pub digest_time_zone: TimeZoneName,
    /// Days an invitation's join link stays valid.
    pub invitation_validity_days: u32,
    /// Start of the quiet hours (local time), if set.
    pub quiet_hours_start: Option<LocalTime>,
    /// End of the quiet hours (local time), if set.
    pub quiet_hours_end: Option<LocalTime>,
    /// The language of a guardian's messages when theirs has no translation.
    pub default_language: crate::i18n::Locale,
    /// Last change (UTC).
    pub updated_at: DateTime<Utc>,
}

impl TenantSettings {
    /// The quiet hours in force: both ends set and different.
    pub fn quiet_hours(&self) -> Option<QuietHours> {
        QuietHours::of(self.quiet_hours_start, self.quiet_hours_end)
    }
}

impl TryFrom<tenant_settings::Model> for TenantSettings {
    type Error = DbErr;

    /// Parses a stored row; a value no writer could have stored is a type error naming the
    /// column.
    fn try_from(m: tenant_settings::Model) -> Result<Self, DbErr> {
        fn bad(column: &str, message: impl std::fmt::Display) -> DbErr {
            DbErr::Type(format!("tenant_settings.{column}: {message}"))
        }
        let count = |column: &str, n: i32| u32::try_from(n).map_err(|e| bad(column, e));
        let time = |column: &str, raw: Option<&str>| {
            raw.map(|t| LocalTime::parse(t).map_err(|e| bad(column, e.0)))
                .transpose()
        };
        Ok(Self {
            preferred_invite_channel: Channel::parse(&m.preferred_invite_channel)
                .ok_or_else(|| bad("preferred_invite_channel", &m.preferred_invite_channel))?,
            update_parent_information: m.update_parent_information,
            digest_enabled: m.digest_enabled,
            deletion_guard_percent: m.deletion_guard_percent,
            auto_remove_inactive_guardians: m.auto_remove_inactive_guardians,
            invite_limit_per_guardian: count(
                "invite_limit_per_guardian",
                m.invite_limit_per_guardian,
            )?,
            invite_window_days: count("invite_window_days", m.invite_window_days)?,
            invite_limit_per_tenant_per_day: count(
                "invite_limit_per_tenant_per_day",
                m.invite_limit_per_tenant_per_day,
            )?,
            digest_day: DigestDay::parse(&m.digest_day).map_err(|e| bad("digest_day", e.0))?,
            digest_hour: u8::try_from(m.digest_hour)
                .ok()
                .filter(|h| *h < 24)
                .ok_or_else(|| bad("digest_hour", m.digest_hour))?,
            digest_time_zone: TimeZoneName::parse(&m.digest_time_zone)
                .map_err(|e| bad("digest_time_zone", e.0))?,
            invitation_validity_days: count(
                "invitation_validity_days",
                m.invitation_validity_days,
            )?,
            quiet_hours_start: time("quiet_hours_start", m.quiet_hours_start.as_deref())?,
            quiet_hours_end: time("quiet_hours_end", m.quiet_hours_end.as_deref())?,
            default_language: crate::i18n::Locale::find(&m.default_language)
                .ok_or_else(|| bad("default_language", &m.default_language))?,
            updated_at: m.updated_at,
        })
    }
}

/// The settings of `tenant`, `None` when it has no row.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> Result<Option<TenantSettings>, DbErr> {
    db::rows::one::<tenant_settings::Model, _>(conn, &tenant_settings::Entity::find_by_id(tenant.0))
        .await?
        .map(TenantSettings::try_from)
        .transpose()
}

/// A tenant's settings (SPEC §10 field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// `email` (default) or `sms`.
    pub preferred_invite_channel: String,
    /// Teachers may propose contact edits (default true).
    pub update_parent_information: bool,
    /// Weekly assignment digest (default false).
    pub digest_enabled: bool,
    /// Share of active links (percent) a sync may deactivate without `--force` (default 20).
    pub deletion_guard_percent: i32,
    /// Remove guardians who stop being active contacts of the student from chats
    /// automatically, instead of showing the owner a banner (default false).
    pub auto_remove_inactive_guardians: bool,
    /// Invitations one guardian may receive per window (default 3).
    pub invite_limit_per_guardian: i32,
    /// The per-guardian window, days (default 7).
    pub invite_window_days: i32,
    /// Invitations the tenant may send per UTC day (default 10,000).
    pub invite_limit_per_tenant_per_day: i32,
    /// Day of the weekly digest, `monday` … `sunday` (default `saturday`).
    pub digest_day: String,
    /// Hour of the weekly digest, 0–23 in `digestTimeZone` (default 8).
    pub digest_hour: i32,
    /// IANA time zone of the digest's schedule and windows (default `America/New_York`).
    pub digest_time_zone: String,
    /// Days an invitation's join link stays valid (default 14).
    pub invitation_validity_days: i32,
    /// Start of the quiet hours, `HH:MM` in the recipient's time zone (the tenant's
    /// `digestTimeZone` unless the guardian's is known), or empty for none: text messages
    /// due inside the window wait in the outbox until it ends; email is not held.
    pub quiet_hours_start: String,
    /// End of the quiet hours, `HH:MM`, or empty for none. The window is in force when both
    /// ends are set and differ; it may cross midnight (21:00 to 08:00).
    pub quiet_hours_end: String,
    /// The language of a guardian's invitations, digests and pages when theirs
    /// (`preferredLanguage`) has no translation: `en` (default) or `es`.
    pub default_language: String,
    /// Last change (UTC).
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&TenantSettings> for Settings {
    fn from(s: &TenantSettings) -> Self {
        // The stored ranges fit an i32 (see `Key::range`).
        let number = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            preferred_invite_channel: s.preferred_invite_channel.as_str().to_string(),
            update_parent_information: s.update_parent_information,
            digest_enabled: s.digest_enabled,
            deletion_guard_percent: s.deletion_guard_percent,
            auto_remove_inactive_guardians: s.auto_remove_inactive_guardians,
            invite_limit_per_guardian: number(s.invite_limit_per_guardian),
            invite_window_days: number(s.invite_window_days),
            invite_limit_per_tenant_per_day: number(s.invite_limit_per_tenant_per_day),
            digest_day: s.digest_day.as_str().to_string(),
            digest_hour: i32::from(s.digest_hour),
            digest_time_zone: s.digest_time_zone.name().to_string(),
            invitation_validity_days: number(s.invitation_validity_days),
            quiet_hours_start: s
                .quiet_hours_start
                .map(LocalTime::as_string)
                .unwrap_or_default(),
            quiet_hours_end: s
                .quiet_hours_end
                .map(LocalTime::as_string)
                .unwrap_or_default(),
            default_language: s.default_language.tag().to_string(),
            updated_at: s.updated_at,
        }
    }
}

/// One settable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `preferred-invite-channel` / `preferredInviteChannel`.
    PreferredInviteChannel,
    /// `update-parent-information` / `updateParentInformation`.
    UpdateParentInformation,
    /// `digest-enabled` / `digestEnabled`.
    DigestEnabled,
    /// `deletion-guard-percent` / `deletionGuardPercent`.
    DeletionGuardPercent,
    /// `auto-remove-inactive-guardians` / `autoRemoveInactiveGuardians`.
    AutoRemoveInactiveGuardians,
    /// `invite-limit-per-guardian` / `inviteLimitPerGuardian`.
    InviteLimitPerGuardian,
    /// `invite-window-days` / `inviteWindowDays`.
    InviteWindowDays,
    /// `invite-limit-per-tenant-per-day` / `inviteLimitPerTenantPerDay`.
    InviteLimitPerTenantPerDay,
    /// `digest-day` / `digestDay`.
    DigestDay,
    /// `digest-hour` / `digestHour`.
    DigestHour,
    /// `digest-time-zone` / `digestTimeZone`.
    DigestTimeZone,
    /// `invitation-validity-days` / `invitationValidityDays`.
    InvitationValidityDays,
    /// `quiet-hours-start` / `quietHoursStart`.
    QuietHoursStart,
    /// `quiet-hours-end` / `quietHoursEnd`.
    QuietHoursEnd,
    /// `default-language` / `defaultLanguage`.
    DefaultLanguage,
}

/// A parsed value for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    /// A channel name.
    Channel(String),
    /// A switch.
    Flag(bool),
    /// A percentage.
    Percent(i32),
    /// A whole number within the key's range.
    Number(i32),
    /// A day of the week (lower-case name).
    Day(String),
    /// An hour of the day, 0–23.
    Hour(i32),
    /// An IANA time zone name.
    Zone(String),
    /// A time of day (`HH:MM`), or none.
    Time(Option<String>),
    /// A shipped locale's tag.
    Language(String),
}

/// A key or value that is not valid; the message lists what is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingError {
    /// The key as given.
    pub field: String,
    /// What is wrong and what is valid.
    pub message: String,
}

impl Key {
    /// Every key.
    pub const ALL: [Key; 15] = [
        Key::PreferredInviteChannel,
        Key::UpdateParentInformation,
        Key::DigestEnabled,
        Key::DeletionGuardPercent,
        Key::AutoRemoveInactiveGuardians,
        Key::InviteLimitPerGuardian,
        Key::InviteWindowDays,
        Key::InviteLimitPerTenantPerDay,
        Key::DigestDay,
        Key::DigestHour,
        Key::DigestTimeZone,
        Key::InvitationValidityDays,
        Key::QuietHoursStart,
        Key::QuietHoursEnd,
        Key::DefaultLanguage,
    ];

    /// The CLI name.
    pub fn kebab(self) -> &'static str {
        match self {
            Key::PreferredInviteChannel => "preferred-invite-channel",
            Key::UpdateParentInformation => "update-parent-information",
            Key::DigestEnabled => "digest-enabled",
            Key::DeletionGuardPercent => "deletion-guard-percent",
            Key::AutoRemoveInactiveGuardians => "auto-remove-inactive-guardians",
            Key::InviteLimitPerGuardian => "invite-limit-per-guardian",
            Key::InviteWindowDays => "invite-window-days",
            Key::InviteLimitPerTenantPerDay => "invite-limit-per-tenant-per-day",
            Key::DigestDay => "digest-day",
            Key::DigestHour => "digest-hour",
            Key::DigestTimeZone => "digest-time-zone",
            Key::InvitationValidityDays => "invitation-validity-days",
            Key::QuietHoursStart => "quiet-hours-start",
            Key::QuietHoursEnd => "quiet-hours-end",
            Key::DefaultLanguage => "default-language",
        }
    }

    /// The JSON name.
    pub fn camel(self) -> &'static str {
        match self {
            Key::PreferredInviteChannel => "preferredInviteChannel",
            Key::UpdateParentInformation => "updateParentInformation",
            Key::DigestEnabled => "digestEnabled",
            Key::DeletionGuardPercent => "deletionGuardPercent",
            Key::AutoRemoveInactiveGuardians => "autoRemoveInactiveGuardians",
            Key::InviteLimitPerGuardian => "inviteLimitPerGuardian",
            Key::InviteWindowDays => "inviteWindowDays",
            Key::InviteLimitPerTenantPerDay => "inviteLimitPerTenantPerDay",
            Key::DigestDay => "digestDay",
            Key::DigestHour => "digestHour",
            Key::DigestTimeZone => "digestTimeZone",
            Key::InvitationValidityDays => "invitationValidityDays",
            Key::QuietHoursStart => "quietHoursStart",
            Key::QuietHoursEnd => "quietHoursEnd",
            Key::DefaultLanguage => "defaultLanguage",
        }
    }

    /// Finds a key by its CLI or JSON name.
    pub fn parse(raw: &str) -> Result<Key, SettingError> {
        Key::ALL
            .into_iter()
            .find(|k| k.kebab() == raw || k.camel() == raw)
            .ok_or_else(|| SettingError {
                field: raw.to_string(),
                message: format!(
                    "unknown setting; the settings are {}",
                    Key::ALL.map(|k| k.kebab()).join(", ")
                ),
            })
    }

    /// Finds a key by its JSON name only (`PATCH /api/v1/settings`, whose schema lists the
    /// camelCase names).
    pub fn parse_camel(raw: &str) -> Result<Key, SettingError> {
        Key::ALL
            .into_iter()
            .find(|k| k.camel() == raw)
            .ok_or_else(|| SettingError {
                field: raw.to_string(),
                message: format!(
                    "unknown setting; the settings are {}",
                    Key::ALL.map(|k| k.camel()).join(", ")
                ),
            })
    }

    fn error(self, message: impl Into<String>) -> SettingError {
        SettingError {
            field: self.camel().to_string(),
            message: message.into(),
        }
    }

    /// Parses a JSON value for this key.
    pub fn parse_json(self, value: &serde_json::Value) -> Result<SettingValue, SettingError> {
        match (self, value) {
            // JSON clients give the exact value the schema lists (people typing at the CLI
            // may use any case and spaces).
            (
                Key::PreferredInviteChannel
                | Key::DigestDay
                | Key::DigestTimeZone
                | Key::DefaultLanguage,
                serde_json::Value::String(s),
            ) => {
                let value = self.parse_text(s)?;
                match &value {
                    SettingValue::Channel(v)
                    | SettingValue::Day(v)
                    | SettingValue::Zone(v)
                    | SettingValue::Language(v)
                        if v == s =>
                    {
                        Ok(value)
                    }
                    _ => Err(self.error(format!("'{s}' is not valid; {}", self.expected()))),
                }
            }
            // Exactly `HH:MM` or empty, as the schema's pattern says.
            (Key::QuietHoursStart | Key::QuietHoursEnd, serde_json::Value::String(s)) => {
                match self.parse_text(s)? {
                    SettingValue::Time(Some(t)) if t == *s => Ok(SettingValue::Time(Some(t))),
                    SettingValue::Time(None) if s.is_empty() => Ok(SettingValue::Time(None)),
                    _ => Err(self.error(format!("'{s}' is not valid; {}", self.expected()))),
                }
            }
            (Key::UpdateParentInformation | Key::DigestEnabled, serde_json::Value::Bool(b))
            | (Key::AutoRemoveInactiveGuardians, serde_json::Value::Bool(b)) => {
                Ok(SettingValue::Flag(*b))
            }
            (Key::DeletionGuardPercent | Key::DigestHour, serde_json::Value::Number(n)) => {
                self.parse_text(&n.to_string())
            }
            (key, serde_json::Value::Number(n)) if key.range().is_some() => {
                self.parse_text(&n.to_string())
            }
            _ => Err(self.error(self.expected())),
        }
    }

    /// Parses a command-line value for this key.
    pub fn parse_text(self, raw: &str) -> Result<SettingValue, SettingError> {
        let raw = raw.trim();
        match self {
            Key::PreferredInviteChannel => match raw {
                "email" | "sms" => Ok(SettingValue::Channel(raw.to_string())),
                _ => Err(self.error(format!("'{raw}' is not valid; {}", self.expected()))),
            },
            Key::UpdateParentInformation
            | Key::DigestEnabled
            | Key::AutoRemoveInactiveGuardians => match raw {
                "true" | "on" | "yes" => Ok(SettingValue::Flag(true)),
                "false" | "off" | "no" => Ok(SettingValue::Flag(false)),
                _ => Err(self.error(format!("'{raw}' is not valid; {}", self.expected()))),
            },
            Key::DeletionGuardPercent => raw
                .parse::<i32>()
                .ok()
                .filter(|p| (0..=100).contains(p))
                .map(SettingValue::Percent)
                .ok_or_else(|| self.error(format!("'{raw}' is not valid; {}", self.expected()))),
            Key::DigestDay => DigestDay::parse(raw)
                .map(|d| SettingValue::Day(d.as_str().to_string()))
                .map_err(|e| self.error(e.0)),
            Key::DigestHour => crate::domain::parse_digest_hour(raw)
                .map(|h| SettingValue::Hour(h as i32))
                .map_err(|e| self.error(e.0)),
            Key::DigestTimeZone => crate::domain::TimeZoneName::parse(raw)
                .map(|z| SettingValue::Zone(z.name().to_string()))
                .map_err(|e| self.error(e.0)),
            Key::DefaultLanguage => crate::i18n::SHIPPED
                .iter()
                .find(|tag| tag.eq_ignore_ascii_case(raw))
                .map(|tag| SettingValue::Language(tag.to_string()))
                .ok_or_else(|| self.error(format!("'{raw}' is not valid; {}", self.expected()))),
            Key::QuietHoursStart | Key::QuietHoursEnd if raw.is_empty() || raw == "none" => {
                Ok(SettingValue::Time(None))
            }
            Key::QuietHoursStart | Key::QuietHoursEnd => LocalTime::parse(raw)
                .map(|t| SettingValue::Time(Some(t.as_string())))
                .map_err(|e| self.error(e.0)),
            Key::InviteLimitPerGuardian
            | Key::InviteWindowDays
            | Key::InviteLimitPerTenantPerDay
            | Key::InvitationValidityDays => {
                let (low, high) = self.range().unwrap_or((0, i32::MAX));
                raw.parse::<i32>()
                    .ok()
                    .filter(|n| (low..=high).contains(n))
                    .map(SettingValue::Number)
                    .ok_or_else(|| {
                        self.error(format!(
                            "'{raw}' is not valid; valid values are whole numbers from {low} to {high}"
                        ))
                    })
            }
        }
    }

    /// The accepted range of a numeric invite limit.
    fn range(self) -> Option<(i32, i32)> {
        match self {
            Key::InviteLimitPerGuardian => Some((0, 1000)),
            Key::InviteWindowDays => Some((1, 365)),
            Key::InviteLimitPerTenantPerDay => Some((0, 10_000_000)),
            Key::InvitationValidityDays => Some((1, 365)),
            _ => None,
        }
    }

    /// The JSON schema of the key's value in `PATCH /api/v1/settings`: exactly what
    /// [`Key::parse_json`] accepts.
    pub fn json_schema(self) -> serde_json::Value {
        use serde_json::json;
        let integer =
            |low: i32, high: i32| json!({"type": "integer", "minimum": low, "maximum": high});
        match self {
            Key::PreferredInviteChannel => json!({"type": "string", "enum": ["email", "sms"]}),
            Key::UpdateParentInformation
            | Key::DigestEnabled
            | Key::AutoRemoveInactiveGuardians => json!({"type": "boolean"}),
            Key::DeletionGuardPercent => integer(0, 100),
            Key::DigestHour => integer(0, 23),
            Key::DigestDay => json!({"type": "string", "enum": DigestDay::names()}),
            Key::DigestTimeZone => json!({
                "type": "string",
                "enum": crate::domain::TimeZoneName::all().collect::<Vec<_>>(),
            }),
            Key::QuietHoursStart | Key::QuietHoursEnd => json!({
                "type": "string",
                "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9])?$",
            }),
            Key::DefaultLanguage => json!({"type": "string", "enum": crate::i18n::SHIPPED}),
            Key::InviteLimitPerGuardian
            | Key::InviteWindowDays
            | Key::InviteLimitPerTenantPerDay
            | Key::InvitationValidityDays => {
                let (low, high) = self.range().unwrap_or((0, i32::MAX));
                integer(low, high)
            }
        }
    }

    /// What the key accepts, e.g. "valid values are email, sms" (errors and `--help`).
    pub fn expected(self) -> &'static str {
        match self {
            Key::PreferredInviteChannel => "valid values are email, sms",
            Key::UpdateParentInformation
            | Key::DigestEnabled
            | Key::AutoRemoveInactiveGuardians => "valid values are true, false",
            Key::DeletionGuardPercent => "valid values are whole numbers from 0 to 100",
            Key::InviteLimitPerGuardian => "valid values are whole numbers from 0 to 1000",
            Key::InviteWindowDays => "valid values are whole numbers from 1 to 365",
            Key::InviteLimitPerTenantPerDay => "valid values are whole numbers from 0 to 10000000",
            Key::InvitationValidityDays => "valid values are whole numbers from 1 to 365",
            Key::DigestDay => "valid values are monday … sunday",
            Key::DigestHour => "valid values are whole numbers from 0 to 23",
            Key::DigestTimeZone => {
                "valid values are IANA Area/Location time zone names, e.g. America/New_York, or UTC"
            }
            Key::QuietHoursStart | Key::QuietHoursEnd => {
                "valid values are HH:MM on a 24-hour clock (e.g. 21:00, 08:00), or empty for none"
            }
            Key::DefaultLanguage => "valid values are en (English), es (Spanish)",
        }
    }

    /// The current value as text (CLI).
    pub fn show(self, settings: &Settings) -> String {
        match self {
            Key::PreferredInviteChannel => settings.preferred_invite_channel.clone(),
            Key::UpdateParentInformation => settings.update_parent_information.to_string(),
            Key::DigestEnabled => settings.digest_enabled.to_string(),
            Key::DeletionGuardPercent => settings.deletion_guard_percent.to_string(),
            Key::AutoRemoveInactiveGuardians => settings.auto_remove_inactive_guardians.to_string(),
            Key::InviteLimitPerGuardian => settings.invite_limit_per_guardian.to_string(),
            Key::InviteWindowDays => settings.invite_window_days.to_string(),
            Key::InviteLimitPerTenantPerDay => settings.invite_limit_per_tenant_per_day.to_string(),
            Key::DigestDay => settings.digest_day.clone(),
            Key::DigestHour => settings.digest_hour.to_string(),
            Key::DigestTimeZone => settings.digest_time_zone.clone(),
            Key::InvitationValidityDays => settings.invitation_validity_days.to_string(),
            Key::QuietHoursStart => settings.quiet_hours_start.clone(),
            Key::QuietHoursEnd => settings.quiet_hours_end.clone(),
            Key::DefaultLanguage => settings.default_language.clone(),
        }
    }
}

/// The JSON schema of a `PATCH /api/v1/settings` body: one or more keys, each with its
/// own schema, nothing else.
pub fn patch_schema() -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = Key::ALL
        .iter()
        .map(|key| {
            let mut schema = key.json_schema();
            schema["description"] = serde_json::Value::from(key.expected());
            (key.camel().to_string(), schema)
        })
        .collect();
    serde_json::json!({
        "type": "object",
        "description": "The settings to change (at least one); the others keep their values.",
        "properties": properties,
        "additionalProperties": false,
        "minProperties": 1,
    })
}

/// Errors of settings operations.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A key or value is not valid.
    #[error(transparent)]
    Invalid(#[from] SettingError),
    /// The tenant has no settings row.
    #[error("the tenant has no settings")]
    NotFound,
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// The tenant's settings.
pub async fn get(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
) -> Result<Settings, SettingsError> {
    load(db_conn, tenant)
        .await?
        .map(|s| Settings::from(&s))
        .ok_or(SettingsError::NotFound)
}

/// Applies `changes` in one audited transaction and returns the new settings.
pub async fn update(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    changes: &[(Key, SettingValue)],
    actor: &str,
) -> Result<Settings, SettingsError> {
    let txn = db::begin_write(db_conn).await?;
    let model = tenant_settings::Entity::find_by_id(tenant.0)
        .one(&txn)
        .await?
        .ok_or(SettingsError::NotFound)?;
    let before = Settings::from(&TenantSettings::try_from(model.clone())?);
    let mut active = model.into_active_model();
    for (key, value) in changes {
        match (key, value) {
            (Key::PreferredInviteChannel, SettingValue::Channel(c)) => {
                active.preferred_invite_channel = Set(c.clone())
            }
            (Key::UpdateParentInformation, SettingValue::Flag(b)) => {
                active.update_parent_information = Set(*b)
            }
            (Key::DigestEnabled, SettingValue::Flag(b)) => active.digest_enabled = Set(*b),
            (Key::DeletionGuardPercent, SettingValue::Percent(p)) => {
                active.deletion_guard_percent = Set(*p)
            }
            (Key::AutoRemoveInactiveGuardians, SettingValue::Flag(b)) => {
                active.auto_remove_inactive_guardians = Set(*b)
            }
            (Key::InviteLimitPerGuardian, SettingValue::Number(n)) => {
                active.invite_limit_per_guardian = Set(*n)
            }
            (Key::InviteWindowDays, SettingValue::Number(n)) => active.invite_window_days = Set(*n),
            (Key::InviteLimitPerTenantPerDay, SettingValue::Number(n)) => {
                active.invite_limit_per_tenant_per_day = Set(*n)
            }
            (Key::DigestDay, SettingValue::Day(d)) => active.digest_day = Set(d.clone()),
            (Key::DigestHour, SettingValue::Hour(h)) => active.digest_hour = Set(*h),
            (Key::DigestTimeZone, SettingValue::Zone(z)) => {
                active.digest_time_zone = Set(z.clone())
            }
            (Key::InvitationValidityDays, SettingValue::Number(n)) => {
                active.invitation_validity_days = Set(*n)
            }
            (Key::QuietHoursStart, SettingValue::Time(t)) => {
                active.quiet_hours_start = Set(t.clone())
            }
            (Key::QuietHoursEnd, SettingValue::Time(t)) => active.quiet_hours_end = Set(t.clone()),
            (Key::DefaultLanguage, SettingValue::Language(l)) => {
                active.default_language = Set(l.clone())
            }
            (key, _) => return Err(key.error(key.expected()).into()),
        }
    }
    active.updated_at = Set(chrono::Utc::now());
    let after = Settings::from(&TenantSettings::try_from(active.update(&txn).await?)?);
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "settings.update",
            target: Some(format!("tenant_settings:{}", tenant.0)),
            before: Some(serde_json::to_value(&before).unwrap_or_default()),
            after: Some(serde_json::to_value(&after).unwrap_or_default()),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_parse_with_clear_errors() {
        assert_eq!(
            Key::parse("preferred-invite-channel").unwrap(),
            Key::PreferredInviteChannel
        );
        assert_eq!(Key::parse("digestEnabled").unwrap(), Key::DigestEnabled);
        assert_eq!(
            Key::parse_camel("digestEnabled").unwrap(),
            Key::DigestEnabled
        );
        assert!(
            Key::parse_camel("digest-enabled").is_err(),
            "JSON takes camelCase only"
        );
        assert!(
            Key::parse("colour")
                .unwrap_err()
                .message
                .contains("digest-enabled")
        );
        let bad = Key::PreferredInviteChannel.parse_text("fax").unwrap_err();
        assert!(bad.message.contains("email, sms"), "{}", bad.message);
        assert_eq!(
            Key::DeletionGuardPercent.parse_json(&serde_json::json!(35)),
            Ok(SettingValue::Percent(35))
        );
        assert!(Key::DeletionGuardPercent.parse_text("101").is_err());
        assert!(
            Key::UpdateParentInformation
                .parse_json(&serde_json::json!("yes"))
                .is_err()
        );
    }

    #[test]
    fn digest_schedule_keys_parse() {
        assert_eq!(Key::parse("digest-time-zone").unwrap(), Key::DigestTimeZone);
        assert_eq!(
            Key::DigestDay.parse_text(" Sunday"),
            Ok(SettingValue::Day("sunday".into())),
            "people at the CLI may type any case"
        );
        assert_eq!(
            Key::DigestDay.parse_json(&serde_json::json!("sunday")),
            Ok(SettingValue::Day("sunday".into()))
        );
        assert!(
            Key::DigestDay
                .parse_json(&serde_json::json!("Sunday"))
                .is_err(),
            "JSON clients give exactly a value of the schema's enum"
        );
        assert_eq!(
            Key::DigestHour.parse_json(&serde_json::json!(23)),
            Ok(SettingValue::Hour(23))
        );
        assert!(Key::DigestHour.parse_json(&serde_json::json!(24)).is_err());
        assert!(Key::DigestHour.parse_json(&serde_json::json!(7.5)).is_err());
        assert!(Key::DigestHour.parse_json(&serde_json::json!("8")).is_err());
        let bad = Key::DigestTimeZone.parse_text("Eastern Time").unwrap_err();
        assert_eq!(bad.field, "digestTimeZone");
        assert!(bad.message.contains("IANA"), "{}", bad.message);
        assert_eq!(
            Key::DigestTimeZone.parse_text("Australia/Sydney"),
            Ok(SettingValue::Zone("Australia/Sydney".into()))
        );
    }

    fn stored(channel: &str, zone: &str) -> tenant_settings::Model {
        tenant_settings::Model {
            tenant_id: 1,
            preferred_invite_channel: channel.into(),
            update_parent_information: true,
            digest_enabled: false,
            deletion_guard_percent: 20,
            auto_remove_inactive_guardians: false,
            invite_limit_per_guardian: 3,
            invite_window_days: 7,
            invite_limit_per_tenant_per_day: 10_000,
            digest_day: "saturday".into(),
            digest_hour: 8,
            digest_time_zone: zone.into(),
            invitation_validity_days: 14,
            updated_at: chrono::Utc::now(),
            quiet_hours_start: Some("21:00".into()),
            quiet_hours_end: None,
            default_language: "es".into(),
        }
    }

    #[test]
    fn quiet_hours_take_hh_mm_or_empty() {
        let start = Key::parse("quiet-hours-start").unwrap();
        assert_eq!(start, Key::QuietHoursStart);
        assert_eq!(
            start.parse_text(" 9:05 "),
            Ok(SettingValue::Time(Some("09:05".into())))
        );
        assert_eq!(start.parse_text(""), Ok(SettingValue::Time(None)));
        assert!(
            start
                .parse_text("9pm")
                .unwrap_err()
                .message
                .contains("HH:MM")
        );
        assert_eq!(
            start.parse_json(&serde_json::json!("21:00")),
            Ok(SettingValue::Time(Some("21:00".into())))
        );
        assert_eq!(
            start.parse_json(&serde_json::json!("")),
            Ok(SettingValue::Time(None))
        );
        assert!(
            start.parse_json(&serde_json::json!("9:00")).is_err(),
            "the schema's form only"
        );
        assert!(start.parse_json(&serde_json::json!(21)).is_err());
        // One end alone is no window.
        let parsed = TenantSettings::try_from(stored("email", "UTC")).unwrap();
        assert!(parsed.quiet_hours().is_none());
        assert_eq!(Settings::from(&parsed).quiet_hours_start, "21:00");
        assert_eq!(Settings::from(&parsed).quiet_hours_end, "");
    }

    #[test]
    fn stored_settings_parse_once_into_types() {
        let parsed = TenantSettings::try_from(stored("sms", "Australia/Sydney")).unwrap();
        assert_eq!(parsed.preferred_invite_channel, Channel::Sms);
        assert_eq!(parsed.digest_time_zone.name(), "Australia/Sydney");
        assert_eq!(parsed.digest_day, DigestDay::DEFAULT);
        let shown = Settings::from(&parsed);
        assert_eq!(shown.preferred_invite_channel, "sms");
        assert_eq!(shown.digest_hour, 8);
        let bad = TenantSettings::try_from(stored("fax", "UTC")).unwrap_err();
        assert!(
            bad.to_string().contains("preferred_invite_channel"),
            "{bad}"
        );
        assert!(TenantSettings::try_from(stored("email", "EST")).is_err());
    }

    #[test]
    fn the_patch_schema_lists_exactly_what_json_accepts() {
        let schema = patch_schema();
        assert_eq!(schema["minProperties"], 1);
        assert_eq!(schema["additionalProperties"], false);
        for key in Key::ALL {
            let property = &schema["properties"][key.camel()];
            if let Some(values) = property["enum"].as_array() {
                for value in values {
                    assert!(key.parse_json(value).is_ok(), "{} {value}", key.camel());
                }
            }
            if let (Some(low), Some(high)) =
                (property["minimum"].as_i64(), property["maximum"].as_i64())
            {
                for (n, ok) in [
                    (low, true),
                    (high, true),
                    (low - 1, false),
                    (high + 1, false),
                ] {
                    let given = serde_json::json!(n);
                    assert_eq!(key.parse_json(&given).is_ok(), ok, "{} {n}", key.camel());
                }
            }
        }
        let zones = schema["properties"]["digestTimeZone"]["enum"]
            .as_array()
            .unwrap();
        assert!(zones.contains(&serde_json::json!("America/New_York")));
        assert!(!zones.contains(&serde_json::json!("EST")));
    }
}
