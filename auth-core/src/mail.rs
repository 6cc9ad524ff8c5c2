//! Mail: the [`Mailer`] trait, [`EmailMessage`], and the [`LogMailer`] for development.

use async_trait::async_trait;

use crate::error::BoxError;

/// One message with a plain-text and an HTML part.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl std::fmt::Debug for EmailMessage {
    // Bodies carry codes and reset links: never in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailMessage").field("to", &self.to).field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Sends mail. The service maps a failure to `mail_unavailable` (502) and leaves no code valid
/// that was not delivered.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `message`.
    ///
    /// # Errors
    /// Any delivery failure (connection refused, rejected recipient, timeout).
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError>;
}

/// Writes each message, body included, to the log at `INFO` (target `auth_core::mail`) instead of
/// sending it, so a developer can read codes and links. Never use it in production: the log then
/// holds live secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError> {
        tracing::info!(
            target: "auth_core::mail",
            to = %message.to,
            subject = %message.subject,
            "log mailer (development only) would send:\n{}",
            message.text
        );
        Ok(())
    }
}
