//! The teachers' pages (`/teacher/…`): their classes ([`classes`]), a student's active
//! parents and guardians with proposals and "Start a chat" ([`students`], [`proposals`]),
//! their contact requests ([`requests`]), chats ([`chats`]) and block list ([`blocks`]).
//! Each handler first asks [`policy::teacher_pages`] (the pages are for teachers), then the
//! same policy function as its API route, and calls the same services. Anything out of the
//! teacher's reach is the 404 page, as in the API.

pub mod blocks;
pub mod chats;
pub mod classes;
pub mod proposals;
pub mod requests;
pub mod students;

use crate::api::AppState;
use crate::auth::{Identity, Principal, Role, policy};
use crate::roster::PageRequest;
use crate::web::error::PageError;
use crate::web::session::WebSession;
use axum::Router;
use axum::routing::{get, post};

/// The teachers' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teacher/classes", get(classes::list))
        .route("/teacher/classes/{id}", get(classes::show))
        .route("/teacher/classes/{id}/digest", post(classes::set_digest))
        .route("/teacher/students/{id}", get(students::show))
        .route("/teacher/students/{id}/chats", post(students::start_chat))
        .route(
            "/teacher/students/{id}/proposals/new",
            get(proposals::new_contact).post(proposals::propose_add),
        )
        .route(
            "/teacher/students/{id}/contacts/{contact}/change",
            get(proposals::change).post(proposals::propose_change),
        )
        .route(
            "/teacher/students/{id}/contacts/{contact}/removal",
            post(proposals::propose_removal),
        )
        .route("/teacher/requests", get(requests::list))
        .route("/teacher/chats", get(chats::list))
        .route("/teacher/chats/{id}", get(chats::show))
        .route(
            "/teacher/chats/{id}/members/{contact}/remove",
            post(chats::remove_member),
        )
        .route(
            "/teacher/chats/{id}/members/{contact}/block",
            post(chats::block),
        )
        .route("/teacher/blocks", get(blocks::list))
        .route("/teacher/blocks/{contact}/unblock", post(blocks::unblock))
}

/// The signed-in person acting as a teacher: their principal with the teacher role alone,
/// so every policy answer on these pages is the teacher's (a teacher who is also an admin
/// sees their own classes and requests here, and the admin views on the admin pages); the
/// 403 page for anyone without the teacher role.
fn teacher(session: &WebSession) -> Result<Principal, PageError> {
    policy::teacher_pages(&session.principal)?;
    let mut me = session.principal.clone();
    if let Identity::User { roles, .. } = &mut me.identity {
        roles.retain(|role| *role == Role::Teacher);
    }
    Ok(me)
}

/// `?cursor=` of a list page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Paging {
    /// Where the page starts (the previous page's "Next page" link).
    pub cursor: Option<String>,
}

impl Paging {
    /// The page to read: `api.default_page_size` items after the cursor.
    fn request(&self, state: &AppState) -> PageRequest {
        PageRequest {
            after: self.cursor.clone().filter(|c| !c.is_empty()),
            limit: page_size(state),
        }
    }

    /// The cursor of a list paged by row id; a cursor that is not one is the 404 page.
    fn id(&self) -> Result<Option<i64>, PageError> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(raw) => raw.parse().map(Some).map_err(|_| PageError::NotFound),
        }
    }
}

/// Items per page of the teacher pages: the API's default page size.
fn page_size(state: &AppState) -> u64 {
    state
        .config
        .api
        .default_page_size
        .clamp(1, state.config.api.max_page_size.max(1))
}

/// `text` percent-encoded for a URL path segment or query value (everything but the
/// unreserved characters), so any SIS id makes a working link.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The "Next page" link of `path` for `next` (none on the last page).
fn next_link(path: &str, next: Option<String>) -> Option<String> {
    next.map(|cursor| format!("{path}?cursor={}", encode(&cursor)))
}

/// A student's page.
fn student_href(student: &str) -> String {
    format!("/teacher/students/{}", encode(student))
}

pub(crate) use crate::web::when;

// The teacher handlers answer the chat errors a teacher can cause (`NoMembers`,
// `InvalidMembers`, `ContactBlocked`) themselves; the rest map in `web::error`.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_make_working_links() {
        assert_eq!(encode("stu-1"), "stu-1");
        assert_eq!(encode("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(student_href("x/y"), "/teacher/students/x%2Fy");
        assert_eq!(
            next_link("/teacher/classes", Some("c 1".into())).as_deref(),
            Some("/teacher/classes?cursor=c%201")
        );
    }
}
