//! The parents' and guardians' pages (`/guardian…`): their children's teachers, their chats,
//! digest and SMS preferences.

use crate::api::AppState;
use axum::Router;

/// The guardians' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
