//! Invitations and their delivery (SPEC §5): `POST /api/v1/chats/{id}/invitations`
//! (resend), `GET /api/v1/invitations/{id}`, `GET /api/v1/invitations/limits`, the admin
//! view of the outbox (`GET /api/v1/outbox`, `POST /api/v1/outbox/{id}/requeue`), and the
//! SMS gateway's inbound webhook for `STOP`/`START` replies
//! (`POST /api/v1/sms/inbound/{tenant}`).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, IdPageParams, id_cursor};
use crate::auth::{Principal, policy};
use crate::chats::store::{self, Viewer};
use crate::domain::PhoneE164;
use crate::invites::{self, Counter, InvitationItem};
use crate::outbox::consent::{Keyword, OptOuts};
use crate::outbox::store::{self as outbox, DeadLetter};
use crate::tenants;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Body of a resend.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResendBody {
    /// The guardian (a member of the chat).
    pub contact_id: String,
}

fn number(raw: &str, what: &'static str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::not_found(what))
}

/// Sends a guardian's invitation again (the chat's owner), within the limits.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/invitations",
    tag = "invitations",
    params(("id" = String, Path, description = "Chat id")),
    request_body = ResendBody,
    responses(
        (status = 201, description = "The queued invitation", body = InvitationItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 404, description = "Not the caller's chat, or not a member", body = ErrorBody),
        (status = 422, description = "Not sent (`invitation_not_sent`, `details.reason`: a limit, already joined, unreachable)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resend(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResendBody>,
) -> Result<(StatusCode, Json<InvitationItem>), ApiError> {
    let owner = policy::chat_owner(&principal)?;
    let item = store::resend_invitation(
        &state.db,
        principal.tenant,
        (number(&id, "chat")?, &owner),
        number(&body.contact_id, "member")?,
        OptOuts::texting(&state.config, &state.privacy).as_ref(),
    )
    .await?;
    match item.id {
        Some(_) => Ok((StatusCode::CREATED, Json(item))),
        None => {
            let reason = item.reason.clone().unwrap_or_default();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invitation_not_sent",
                format!("no invitation was sent: {reason}"),
            )
            .with_details(serde_json::json!({ "reason": reason })))
        }
    }
}

/// One invitation with its delivery status (the chat's owner, or an admin).
#[utoipa::path(
    get,
    path = "/api/v1/invitations/{id}",
    tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "The invitation", body = InvitationItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher or admin", body = ErrorBody),
        (status = 404, description = "No such invitation within the caller's reach", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvitationItem>, ApiError> {
    let viewer = policy::chat_viewer(&principal)?;
    let (item, owner) = invites::get(&state.db, principal.tenant, number(&id, "invitation")?)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    match viewer {
        Viewer::Admin => Ok(Json(item)),
        Viewer::Teacher(teacher) if teacher == owner => Ok(Json(item)),
        _ => Err(ApiError::not_found("invitation")),
    }
}

/// `?contactId=` of the limits.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitParams {
    /// Also the counter of this guardian.
    pub contact_id: Option<String>,
}

/// The invite limits and their current counters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Invitations of the tenant today (UTC), and the daily limit.
    pub tenant: Counter,
    /// Invitations of the guardian named by `contactId` in the rolling window.
    pub guardian: Option<Counter>,
    /// The guardian window, in days.
    pub guardian_window_days: i64,
    /// The guardian limit per window.
    pub guardian_limit: i64,
}

/// The tenant's invite limits (published settings) and how much is used.
#[utoipa::path(
    get,
    path = "/api/v1/invitations/limits",
    tag = "invitations",
    params(LimitParams),
    responses(
        (status = 200, description = "Limits and counters", body = Limits),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher or admin", body = ErrorBody),
        (status = 404, description = "No such guardian (`contactId`) within the caller's reach", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn limits(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<LimitParams>,
) -> Result<Json<Limits>, ApiError> {
    policy::chat_viewer(&principal)?;
    let tenant = principal.tenant;
    let now = Utc::now();
    let policy = invites::policy(&state.db, tenant).await?;
    let guardian = match params.contact_id {
        Some(contact) => {
            let contact = number(&contact, "contact")?;
            policy::contact_invitations(&state.db, &principal, contact).await?;
            Some(invites::guardian_counter(&state.db, tenant, contact, &policy, now).await?)
        }
        None => None,
    };
    Ok(Json(Limits {
        tenant: invites::tenant_counter(&state.db, tenant, &policy, now).await?,
        guardian,
        guardian_window_days: policy.window_days,
        guardian_limit: policy.per_guardian,
    }))
}

/// The tenant's outbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxView {
    /// Messages per status (`queued`, `sending`, `sent`, `failed`, `dead`, `suppressed`),
    /// each counted up to `countCap`: a count equal to it means at least that many.
    pub counts: BTreeMap<String, i64>,
    /// The most a count goes to (10,000).
    pub count_cap: i64,
    /// The latest dead and failed messages, with their last error.
    pub dead_letters: Vec<DeadLetter>,
    /// Text messages waiting for the quiet hours to end, the soonest to go first (at most
    /// 100), with the time each goes.
    pub held: Vec<crate::outbox::store::HeldMessage>,
}

/// Held messages the outbox view lists.
const HELD_SHOWN: u64 = 100;

/// Outbox counts by status, the dead letters and the held messages (admins).
#[utoipa::path(
    get,
    path = "/api/v1/outbox",
    tag = "invitations",
    responses(
        (status = 200, description = "The outbox", body = OutboxView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn outbox_view(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<OutboxView>, ApiError> {
    policy::administer_contacts(&principal)?;
    let (counts, dead_letters) =
        outbox::overview(&state.db, &state.message_kinds, principal.tenant).await?;
    let held = outbox::held(&state.db, principal.tenant, HELD_SHOWN).await?;
    Ok(Json(OutboxView {
        counts,
        count_cap: outbox::COUNT_CAP,
        dead_letters,
        held,
    }))
}

/// Puts a dead or failed message back in the queue (admins; audited).
#[utoipa::path(
    post,
    path = "/api/v1/outbox/{id}/requeue",
    tag = "invitations",
    params(("id" = String, Path, description = "Outbox id")),
    responses(
        (status = 204, description = "Queued again"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such dead or failed message", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn requeue(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    policy::administer_contacts(&principal)?;
    let actor = principal.actor();
    if outbox::requeue(&state.db, principal.tenant, number(&id, "message")?, &actor).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("dead or failed message"))
    }
}

/// Sends one invitation that waits in the outbox (in the recipient's quiet hours, or not yet
/// claimed) at once, as urgent (approvers; audited as `invitation.urgent`, and the invitation
/// shows `urgentAt`).
#[utoipa::path(
    post,
    path = "/api/v1/invitations/{id}/urgent",
    tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "The invitation, due now", body = InvitationItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such invitation", body = ErrorBody),
        (status = 409, description = "Not waiting to be sent (`not_waiting`: sent, failed, …)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn urgent(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvitationItem>, ApiError> {
    policy::administer_contacts(&principal)?;
    let id = number(&id, "invitation")?;
    let actor = principal.actor();
    Ok(Json(
        invites::send_urgent(&state.db, principal.tenant, id, &actor).await?,
    ))
}

/// A page of addresses the mail server refused for good.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionList {
    /// Newest first.
    pub items: Vec<outbox::Suppression>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

/// Email addresses that get nothing more because the mail server refused them for good
/// (admins).
#[utoipa::path(
    get,
    path = "/api/v1/email-suppressions",
    tag = "invitations",
    params(IdPageParams),
    responses(
        (status = 200, description = "Suppressed addresses, newest first", body = SuppressionList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn suppressions(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<IdPageParams>,
) -> Result<Json<SuppressionList>, ApiError> {
    policy::administer_contacts(&principal)?;
    let page = params.request(&state)?;
    let (items, next_cursor) =
        outbox::suppressions(&state.db, principal.tenant, id_cursor(&page)?, page.limit).await?;
    Ok(Json(SuppressionList { items, next_cursor }))
}

/// Lifts a suppression: the address receives invitations and digests again (audited).
#[utoipa::path(
    delete,
    path = "/api/v1/email-suppressions/{id}",
    tag = "invitations",
    params(("id" = String, Path, description = "Suppression id")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such suppression", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn lift_suppression(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    policy::administer_contacts(&principal)?;
    let actor = principal.actor();
    if outbox::lift_suppression(
        &state.db,
        principal.tenant,
        number(&id, "suppression")?,
        &actor,
    )
    .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("suppression"))
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The webhook secret of a request: `X-Webhook-Secret`, or the password of HTTP basic
/// auth (how Twilio sends credentials embedded in the webhook URL).
fn given_secret(headers: &HeaderMap) -> Option<Vec<u8>> {
    use base64::Engine;
    if let Some(value) = headers.get("x-webhook-secret") {
        return Some(value.as_bytes().to_vec());
    }
    let basic = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.as_bytes().to_vec())
}

/// True when `signature` (the `X-Twilio-Signature` header) is Twilio's signature of a
/// request to `url` with form `params`: base64 of HMAC-SHA1 under the auth token over the
/// URL followed by each parameter's name and value, sorted by name (then value).
fn twilio_signature_valid(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    use base64::Engine;
    use ring::hmac;
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut signed = url.to_string();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    hmac::verify(&key, signed.as_bytes(), &given).is_ok()
}

/// The public URL the gateway called (what it signs): `sms.webhook_url` (`{tenant}` is the
/// tenant's slug), else `web.public_url` followed by the request's path and query.
fn public_url(state: &AppState, tenant: &str, uri: &axum::http::Uri) -> String {
    let configured = state.config.sms.webhook_url.trim();
    if !configured.is_empty() {
        return configured.replace("{tenant}", tenant);
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!(
        "{}{path}",
        state.config.web.public_url.trim().trim_end_matches('/')
    )
}

/// Lets a request through with a valid `X-Twilio-Signature` (when `sms.auth_token` is set)
/// or the shared secret (when `sms.webhook_secret` is set).
fn authenticate_webhook(
    state: &AppState,
    (headers, url): (&HeaderMap, &str),
    params: &[(String, String)],
) -> Result<(), ApiError> {
    let sms = &state.config.sms;
    let (token, secret) = (sms.auth_token.as_str(), sms.webhook_secret.as_bytes());
    if token.is_empty() && secret.is_empty() {
        return Err(ApiError::forbidden(
            "the SMS webhook is off: set sms.auth_token (X-Twilio-Signature) or sms.webhook_secret",
        )
        .with_code("webhook_disabled"));
    }
    let signed = !token.is_empty()
        && headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| twilio_signature_valid(token, url, params, sig));
    let shared = !secret.is_empty()
        && given_secret(headers).is_some_and(|given| same_secret(&given, secret));
    if signed || shared {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "invalid_webhook_secret",
            "the webhook signature or secret is missing or wrong",
        ))
    }
}

/// The first value of form field `name`.
fn form_field<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// The number (or messaging service) the reply was sent to: `MessagingServiceSid`, else
/// `To`, else the configured `sms.from`.
fn replied_to<'a>(params: &'a [(String, String)], configured: &'a str) -> &'a str {
    [
        form_field(params, "MessagingServiceSid"),
        form_field(params, "To"),
    ]
    .into_iter()
    .map(str::trim)
    .find(|v| !v.is_empty())
    .unwrap_or(configured)
}

/// A TwiML answer: the reply as a message, or nothing.
fn twiml(reply: Option<String>) -> impl IntoResponse {
    let body = match reply {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(&text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_string(),
    };
    ([(header::CONTENT_TYPE, "text/xml")], body)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SMS gateway's inbound webhook (form fields `From`, `To`, `Body`, as Twilio sends
/// them). Keywords (CTIA, the whole message in any case): `STOP`, `STOPALL`,
/// `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT` opt the number out of texts from the number it
/// replied to — for every tenant sending from it; `START`, `YES`, `UNSTOP` opt it back in;
/// `HELP`, `INFO` get help. Each keyword is answered with a TwiML message; anything else
/// with an empty `<Response/>`. Authenticated by `X-Twilio-Signature` (with
/// `sms.auth_token`) or the shared `sms.webhook_secret`; not subject to the per-client
/// rate limit.
#[utoipa::path(
    post,
    path = "/api/v1/sms/inbound/{tenant}",
    tag = "invitations",
    params(
        ("tenant" = String, Path, description = "Tenant slug"),
        ("X-Twilio-Signature" = Option<String>, Header, description = "Twilio's signature of the request (with sms.auth_token)"),
    ),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded", description = "From, To, Body"),
    responses(
        (status = 200, description = "Handled: a TwiML reply (`<Response><Message>…</Message></Response>` to a keyword, else `<Response/>`)", content_type = "text/xml", body = String),
        (status = 401, description = "Missing or wrong signature and webhook secret (`invalid_webhook_secret`)", body = ErrorBody),
        (status = 403, description = "The webhook is off: neither sms.auth_token nor sms.webhook_secret is configured (`webhook_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 422, description = "No usable From number", body = ErrorBody),
    )
)]
pub async fn inbound_sms(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    uri: axum::extract::OriginalUri,
    headers: HeaderMap,
    axum::Form(params): axum::Form<Vec<(String, String)>>,
) -> Result<impl IntoResponse, ApiError> {
    let url = public_url(&state, &tenant, &uri);
    authenticate_webhook(&state, (&headers, &url), &params)?;
    let tenant = match tenants::find(&state.db, &tenant).await {
        Ok(tenant) => tenant,
        Err(tenants::TenantError::NotFound(_)) => return Err(ApiError::not_found("tenant")),
        Err(e) => return Err(ApiError::failure(e)),
    };
    let phone = PhoneE164::parse(form_field(&params, "From"), tenant.region).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("From: {}", e.0),
        )
        .with_details(serde_json::json!({"field": "From"}))
    })?;
    let Some(keyword) = Keyword::parse(form_field(&params, "Body")) else {
        return Ok(twiml(None));
    };
    let opt_outs = OptOuts::new(
        state.privacy.clone(),
        replied_to(&params, &state.config.sms.from),
    );
    match keyword {
        Keyword::OptOut => {
            opt_outs
                .opt_out(&state.db, phone.as_str(), Utc::now())
                .await?;
            tracing::info!(tenant = %tenant.slug, "a number opted out of SMS from the sender");
        }
        Keyword::OptIn => {
            opt_outs.opt_in(&state.db, phone.as_str()).await?;
            tracing::info!(tenant = %tenant.slug, "a number opted back in to SMS from the sender");
        }
        Keyword::Help => {}
    }
    Ok(twiml(Some(keyword.reply(&state.config.sms.sender_name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Twilio's published example (docs "Webhooks security": auth token 12345).
    #[test]
    fn twilio_signatures_follow_the_published_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert!(twilio_signature_valid("12345", url, &form, good));
        assert!(!twilio_signature_valid("12346", url, &form, good));
        assert!(!twilio_signature_valid(
            "12345",
            "https://mycompany.com/myapp.php",
            &form,
            good
        ));
        assert!(!twilio_signature_valid("12345", url, &form[1..], good));
        assert!(!twilio_signature_valid("12345", url, &form, "not base64!"));
    }

    #[test]
    fn secrets_and_senders() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "Basic dXNlcjpzM2NyZXQ=".parse().unwrap(),
        );
        assert_eq!(given_secret(&headers).unwrap(), b"s3cret");
        let form = params(&[("To", "+15550001111")]);
        assert_eq!(replied_to(&form, "+15559999999"), "+15550001111");
        assert_eq!(replied_to(&[], "+15559999999"), "+15559999999");
        assert_eq!(xml_escape("a&b<c>"), "a&amp;b&lt;c&gt;");
    }
}

/// A page of invitations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationList {
    /// The invitations, each with its `state` (`pending`, `sent`, `accepted`, `expired`,
    /// `cancelled`, `failed`).
    pub items: Vec<InvitationItem>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// The invitations of a chat, oldest first, with their states (the chat's owner, or an
/// admin).
#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}/invitations",
    tag = "invitations",
    params(("id" = String, Path, description = "Chat id"), IdPageParams),
    responses(
        (status = 200, description = "The chat's invitations, oldest first", body = InvitationList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher or admin", body = ErrorBody),
        (status = 404, description = "Not the caller's chat", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn for_chat(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<IdPageParams>,
) -> Result<Json<InvitationList>, ApiError> {
    let viewer = policy::chat_viewer(&principal)?;
    let page = params.request(&state)?;
    let chat = number(&id, "chat")?;
    let owner = store::owner(&state.db, principal.tenant, chat, &viewer)
        .await?
        .ok_or_else(|| ApiError::not_found("chat"))?;
    match viewer {
        Viewer::Admin => {}
        Viewer::Teacher(teacher) if teacher == owner => {}
        _ => return Err(ApiError::not_found("chat")),
    }
    let (items, next_cursor) = invites::page_for_chat(
        &state.db,
        principal.tenant,
        chat,
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(InvitationList { items, next_cursor }))
}

/// Every invitation of one guardian, newest first, with their states (admins).
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{contactId}/invitations",
    tag = "invitations",
    params(("contactId" = String, Path, description = "Contact id"), IdPageParams),
    responses(
        (status = 200, description = "The guardian's invitations, newest first", body = InvitationList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn for_contact(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(contact): ApiPath<String>,
    ApiQuery(params): ApiQuery<IdPageParams>,
) -> Result<Json<InvitationList>, ApiError> {
    policy::administer_contacts(&principal)?;
    let contact = number(&contact, "contact")?;
    policy::contact_invitations(&state.db, &principal, contact).await?;
    let page = params.request(&state)?;
    let (items, next_cursor) = invites::for_contact(
        &state.db,
        principal.tenant,
        contact,
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(InvitationList { items, next_cursor }))
}
