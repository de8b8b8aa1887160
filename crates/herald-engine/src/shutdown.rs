//! One stop signal for every part of a process: the worker's claim loop, its waits for a rate
//! slot, the app's idle sleep. Modelled on mini-redis's `shutdown.rs`: the listening side is a
//! cheap clone that can be asked whether shutdown began and awaited until it does.
//!
//! # Why a watch channel
//! A stop must reach tasks that subscribe after it was sent (a step starting while the process
//! is already stopping) and must be checked without awaiting (before every claim). A `watch`
//! keeps the last value for both; a `broadcast` would lose it for late subscribers.

use tokio::sync::watch;

/// The triggering side: the signal handler (or a test) calls [`ShutdownSignal::trigger`].
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    sender: watch::Sender<bool>,
}

/// The listening side: the worker, its request tasks and the app's loops each hold one.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl ShutdownSignal {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self {
            sender: watch::Sender::new(false),
        }
    }

    /// A listener; it sees a trigger sent before or after it was made.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            receiver: self.sender.subscribe(),
        }
    }

    /// Begins the shutdown: every listener's [`Shutdown::is_shutdown`] is true from now on and
    /// every [`Shutdown::recv`] returns. Triggering twice is harmless.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether [`ShutdownSignal::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A listener that never fires: for a worker nobody stops (tests, one-off tools).
    pub fn never() -> Self {
        // The sender is dropped at once; `recv` then waits forever (see there), `is_shutdown`
        // stays false.
        ShutdownSignal::new().subscribe()
    }

    /// Whether shutdown began.
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Returns once shutdown begins (at once if it already has). A listener whose signal was
    /// dropped without triggering waits forever: nobody can stop it any more.
    pub async fn recv(&mut self) {
        if self.receiver.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_reaches_listeners_made_before_and_after() {
        let signal = ShutdownSignal::new();
        let mut early = signal.subscribe();
        assert!(!early.is_shutdown());
        signal.trigger();
        early.recv().await;
        assert!(early.is_shutdown());
        let mut late = signal.subscribe();
        assert!(late.is_shutdown());
        late.recv().await;
        assert!(signal.is_triggered());
    }

    #[tokio::test(start_paused = true)]
    async fn a_listener_without_a_signal_never_fires() {
        let mut never = Shutdown::never();
        assert!(!never.is_shutdown());
        let waited = tokio::time::timeout(std::time::Duration::from_secs(3600), never.recv()).await;
        assert!(waited.is_err());
    }
}
