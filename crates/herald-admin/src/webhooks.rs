//! Provider webhooks, mounted at `/webhooks/whatsapp` without the admin token (the provider
//! signs its requests instead). Owned by the webhooks work; the admin only mounts it.

use axum::Router;

use crate::AdminState;

/// The webhook routes, relative to `/webhooks/whatsapp`.
pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
}
