//! [`detached`]: runs a store operation to completion even if its caller is cancelled.
//!
//! A request future is dropped when its client disconnects (axum), times out, or loses a
//! `select!`. A multi-statement operation dropped mid-transaction must not leave its connection
//! inside a transaction, and sqlx 0.8 does not guarantee that on PostgreSQL: a `begin()` cancelled
//! after `BEGIN` was sent but before its reply returns the connection to the pool with the
//! server-side transaction open and nothing queued to end it (sqlx issue #4393), so the next
//! borrower's statements run inside it. A commit cancelled after `COMMIT` was sent queues a
//! needless `ROLLBACK`. Rather than depend on every await point of the driver being cancel-safe,
//! the SQL backends run each transaction in a task of its own that always reaches its `COMMIT`
//! or `ROLLBACK`; the caller only waits for the outcome.

use std::future::Future;

use auth_core::StoreError;

/// Runs `operation` in its own Tokio task and waits for its result. Dropping the returned future
/// does not stop the operation: it still runs to completion (commit or rollback), and its result
/// is discarded.
///
/// `operation` must own what it uses (`'static`): clone the pool and the arguments into it.
///
/// # Errors
/// What `operation` returns; [`StoreError::Backend`] if its task panicked or was cancelled (the
/// runtime shutting down). A panic unwinds through the transaction, whose drop queues its
/// rollback.
pub(crate) async fn detached<T, F>(operation: F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(operation).await {
        Ok(result) => result,
        Err(err) => {
            tracing::error!(error = %err, "a store operation's task did not finish");
            Err(StoreError::backend(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_to_completion_when_its_caller_is_cancelled() {
        let done = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let operation = {
            let done = done.clone();
            async move {
                let _ = started_tx.send(());
                tokio::time::sleep(Duration::from_millis(20)).await;
                done.store(true, Ordering::SeqCst);
                Ok(())
            }
        };
        let caller = tokio::spawn(detached(operation));
        started_rx.await.unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        assert!(!done.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(done.load(Ordering::SeqCst), "the operation was stopped with its caller");
    }

    #[tokio::test]
    async fn a_panic_is_a_backend_error() {
        let result = detached::<(), _>(async { panic!("boom") }).await;
        assert!(matches!(result, Err(StoreError::Backend(_))));
    }

    #[tokio::test]
    async fn passes_the_result_through() {
        assert_eq!(detached(async { Ok(7) }).await.unwrap(), 7);
        assert!(matches!(detached::<(), _>(async { Err(StoreError::EmailTaken) }).await, Err(StoreError::EmailTaken)));
    }
}
