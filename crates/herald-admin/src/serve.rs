//! Binding and serving: `herald admin`, and the admin inside `herald serve`.

use std::net::SocketAddr;

use herald_engine::shutdown::Shutdown;
use tokio::net::TcpListener;

use crate::{AdminState, StartError, router};

/// Refuses to serve without a token on anything but loopback: an admin API without a token is
/// for a laptop, never for a network.
pub fn check_listen(state: &AdminState, addr: SocketAddr) -> Result<(), StartError> {
    if state.token.is_none() && !addr.ip().is_loopback() {
        return Err(StartError::OpenOnNetwork(addr));
    }
    Ok(())
}

/// Binds `addr` (checked by [`check_listen`]); the listener's real address is then known
/// (`127.0.0.1:0` picks a port).
pub async fn bind(state: &AdminState, addr: SocketAddr) -> Result<TcpListener, StartError> {
    check_listen(state, addr)?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Serves the admin on `listener` until `shutdown` fires, then finishes the requests in
/// flight (axum's graceful shutdown) and returns.
pub async fn serve(
    state: AdminState,
    listener: TcpListener,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, token = state.token.is_some(), "admin API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.recv().await })
        .await
}
