//! The teachers' pages (`/teacher/…`): their classes, students, the students' parents and
//! guardians, contact edits, chats, blocks and assignments — each asks the policy first,
//! like its API route.

use crate::api::AppState;
use axum::Router;

/// The teachers' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
