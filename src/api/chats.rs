//! Chats, block lists and the guardian side (SPEC §7): `POST|GET /api/v1/chats`,
//! `GET /api/v1/chats/{id}`, `POST /api/v1/chats/{id}/members`,
//! `DELETE /api/v1/chats/{id}/members/{contactId}`, `POST|GET /api/v1/blocks`,
//! `DELETE /api/v1/blocks/{contactId}`, `POST|GET /api/v1/guardian/chats`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, IdPageParams, PageParams, id_cursor};
use crate::auth::{Principal, policy};
use crate::chats::ChatItem;
use crate::chats::blocks::{self, BlockItem};
use crate::chats::store::{self, ChatPage, StartChat, Viewer};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/chats`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBody {
    /// The student's SIS source id.
    pub student_id: String,
    /// Guardians to chat with: active parents/guardians of the student (contact ids); at
    /// most 20 (duplicates count once).
    pub contact_ids: Vec<String>,
    /// Other teachers to add (SIS source ids of active staff); optional, at most 20.
    #[serde(default)]
    pub teacher_ids: Vec<String>,
}

/// Starts a chat with guardians of a student the teacher teaches, or re-enters the
/// teacher's chat about that student with exactly these guardians.
#[utoipa::path(
    post,
    path = "/api/v1/chats",
    tag = "chats",
    request_body = StartBody,
    responses(
        (status = 201, description = "A new chat (owner's view)", body = ChatItem),
        (status = 200, description = "An existing chat, re-entered (`reentered: true`)", body = ChatItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 404, description = "No such student within the teacher's reach", body = ErrorBody),
        (status = 409, description = "A guardian is on the teacher's block list (`contact_blocked`)", body = ErrorBody),
        (status = 422, description = "A contact is inactive, not a parent/guardian, or not the student's (`invalid_members`, each with its reason), or more than 20 contactIds or teacherIds (`too_many_members`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<(StatusCode, Json<ChatItem>), ApiError> {
    let owner = policy::start_chat(&state.db, &principal, &body.student_id).await?;
    let chat = store::start(
        &state.db,
        StartChat {
            sms: crate::outbox::consent::OptOuts::texting(&state.config, &state.privacy),
            tenant: principal.tenant,
            owner: &owner,
            student_source_id: &body.student_id,
            contact_ids: &body.contact_ids,
            teacher_ids: &body.teacher_ids,
        },
    )
    .await?;
    let status = if chat.reentered {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(chat)))
}

/// `?studentId=&limit=&cursor=` of chat lists.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChatParams {
    /// Only chats about this student.
    pub student_id: Option<String>,
    /// Items per page (default `api.default_page_size`, at most `api.max_page_size`).
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// A page of chats.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatList {
    /// Newest first.
    pub items: Vec<ChatItem>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

async fn chat_page(
    state: &AppState,
    principal: &Principal,
    viewer: &Viewer,
    params: ChatParams,
) -> Result<Json<ChatList>, ApiError> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(state)?;
    let (items, next_cursor) = store::list(
        &state.db,
        principal.tenant,
        viewer,
        ChatPage {
            student_source_id: params.student_id.as_deref(),
            before: id_cursor(&page)?,
            limit: page.limit,
        },
    )
    .await?;
    Ok(Json(ChatList { items, next_cursor }))
}

/// The chats the caller may see: a teacher's own (with banners) and those they are in; for
/// admins every chat of the tenant (no banners).
#[utoipa::path(
    get,
    path = "/api/v1/chats",
    tag = "chats",
    params(ChatParams),
    responses(
        (status = 200, description = "Chats, newest first", body = ChatList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher or admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ChatParams>,
) -> Result<Json<ChatList>, ApiError> {
    let viewer = policy::chat_viewer(&principal)?;
    chat_page(&state, &principal, &viewer, params).await
}

fn chat_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::not_found("chat"))
}

/// One chat, as the caller may see it (banners for its owner only).
#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}",
    tag = "chats",
    params(("id" = String, Path, description = "Chat id")),
    responses(
        (status = 200, description = "The chat", body = ChatItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher or admin", body = ErrorBody),
        (status = 404, description = "No such chat within the caller's reach", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ChatItem>, ApiError> {
    let viewer = policy::chat_viewer(&principal)?;
    store::read(&state.db, principal.tenant, chat_id(&id)?, &viewer)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("chat"))
}

/// Body of `POST /api/v1/chats/{id}/members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberBody {
    /// The guardian to add (an active parent/guardian of the chat's student).
    pub contact_id: String,
}

/// Adds a guardian to the owner's chat.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/members",
    tag = "chats",
    params(("id" = String, Path, description = "Chat id")),
    request_body = MemberBody,
    responses(
        (status = 200, description = "The chat", body = ChatItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 404, description = "Not the caller's chat", body = ErrorBody),
        (status = 409, description = "The guardian is blocked (`contact_blocked`)", body = ErrorBody),
        (status = 422, description = "Not an active parent/guardian of the chat's student (`invalid_members`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<Json<ChatItem>, ApiError> {
    let owner = policy::chat_owner(&principal)?;
    let chat = store::add_member(
        &state.db,
        principal.tenant,
        chat_id(&id)?,
        &owner,
        &body.contact_id,
    )
    .await?;
    Ok(Json(chat))
}

/// Removes a guardian from the owner's chat (and the banner about them).
#[utoipa::path(
    delete,
    path = "/api/v1/chats/{id}/members/{contactId}",
    tag = "chats",
    params(
        ("id" = String, Path, description = "Chat id"),
        ("contactId" = String, Path, description = "The guardian's contact id"),
    ),
    responses(
        (status = 200, description = "The chat without the guardian", body = ChatItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 404, description = "Not the caller's chat, or not a member", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, contact)): ApiPath<(String, String)>,
) -> Result<Json<ChatItem>, ApiError> {
    let owner = policy::chat_owner(&principal)?;
    let contact = contact
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("member"))?;
    let chat =
        store::remove_member_now(&state.db, principal.tenant, chat_id(&id)?, &owner, contact)
            .await?;
    Ok(Json(chat))
}

/// Body of `POST /api/v1/blocks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockBody {
    /// The guardian to block.
    pub contact_id: String,
    /// With `removeFromChat`: the owner's chat to remove the guardian from in the same step.
    pub chat_id: Option<String>,
    /// Remove the guardian from `chatId` too.
    #[serde(default)]
    pub remove_from_chat: bool,
}

/// Blocks a guardian: they cannot start any chat with this teacher until the block is
/// lifted. Optionally removes them from one of the teacher's chats in the same step.
#[utoipa::path(
    post,
    path = "/api/v1/blocks",
    tag = "chats",
    request_body = BlockBody,
    responses(
        (status = 201, description = "The block", body = BlockItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 404, description = "No such guardian (or chat) within the teacher's reach", body = ErrorBody),
        (status = 422, description = "removeFromChat without chatId", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn block(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<BlockBody>,
) -> Result<(StatusCode, Json<BlockItem>), ApiError> {
    let owner = policy::chat_owner(&principal)?;
    let contact = body
        .contact_id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("contact"))?;
    let remove_from = match (body.remove_from_chat, body.chat_id.as_deref()) {
        (false, _) => None,
        (true, Some(chat)) => Some(chat_id(chat)?),
        (true, None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "chatId: required with removeFromChat",
            )
            .with_details(serde_json::json!({"field": "chatId"})));
        }
    };
    let actor = principal.actor();
    let item = blocks::block(
        &state.db,
        principal.tenant,
        &owner,
        contact,
        remove_from,
        &actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// A page of a block list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockList {
    /// Newest first.
    pub items: Vec<BlockItem>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

/// The teacher's block list.
#[utoipa::path(
    get,
    path = "/api/v1/blocks",
    tag = "chats",
    params(IdPageParams),
    responses(
        (status = 200, description = "Blocked guardians, newest first", body = BlockList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_blocks(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<IdPageParams>,
) -> Result<Json<BlockList>, ApiError> {
    let owner = policy::chat_owner(&principal)?;
    let page = params.request(&state)?;
    let (items, next_cursor) = blocks::list(
        &state.db,
        principal.tenant,
        &owner,
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(BlockList { items, next_cursor }))
}

/// Lifts a block.
#[utoipa::path(
    delete,
    path = "/api/v1/blocks/{contactId}",
    tag = "chats",
    params(("contactId" = String, Path, description = "The blocked guardian's contact id")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a teacher", body = ErrorBody),
        (status = 404, description = "Not blocked", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn unblock(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(contact): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let owner = policy::chat_owner(&principal)?;
    let contact = contact
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("block"))?;
    let actor = principal.actor();
    blocks::unblock(&state.db, principal.tenant, &owner, contact, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/guardian/chats`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardianStartBody {
    /// The teacher's SIS source id.
    pub owner_id: String,
    /// The child's SIS source id.
    pub student_id: String,
}

/// A guardian starts (or re-enters) a chat with a teacher of their child; refused with
/// `403 blocked` when that teacher blocked them.
#[utoipa::path(
    post,
    path = "/api/v1/guardian/chats",
    tag = "chats",
    request_body = GuardianStartBody,
    responses(
        (status = 201, description = "A new chat (guardian's view)", body = ChatItem),
        (status = 200, description = "An existing chat, re-entered", body = ChatItem),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a contact token, or the teacher blocked the guardian (`blocked`)", body = ErrorBody),
        (status = 404, description = "No such teacher of the guardian's child", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn guardian_start(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<GuardianStartBody>,
) -> Result<(StatusCode, Json<ChatItem>), ApiError> {
    let contact =
        policy::guardian_start_chat(&state.db, &principal, &body.owner_id, &body.student_id)
            .await?;
    store::mark_joined(&state.db, principal.tenant, contact).await?;
    let chat = store::guardian_start(
        &state.db,
        principal.tenant,
        contact,
        &body.owner_id,
        &body.student_id,
    )
    .await?;
    let status = if chat.reentered {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(chat)))
}

/// The guardian's chats (no banners).
#[utoipa::path(
    get,
    path = "/api/v1/guardian/chats",
    tag = "chats",
    params(ChatParams),
    responses(
        (status = 200, description = "Chats the guardian is in, newest first", body = ChatList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not a contact token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn guardian_list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ChatParams>,
) -> Result<Json<ChatList>, ApiError> {
    let contact = policy::guardian(&principal)?;
    store::mark_joined(&state.db, principal.tenant, contact).await?;
    chat_page(&state, &principal, &Viewer::Guardian(contact), params).await
}
