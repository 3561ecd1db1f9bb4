//! The administrators' pages (`/admin/…`): each asks the policy first, like its API route.

pub mod settings;
