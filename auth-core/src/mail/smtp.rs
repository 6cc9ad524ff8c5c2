//! [`SmtpMailer`]: delivery over SMTP with `lettre` (tokio, rustls).

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::BoxError;
use crate::mail::{EmailMessage, Mailer};

/// Sends mail through an SMTP server, configured by URL (lettre's scheme):
///
/// | URL | connection |
/// |---|---|
/// | `smtps://user:pass@smtp.example.com` | TLS from the start (port 465) — recommended |
/// | `smtp://user:pass@smtp.example.com?tls=required` | STARTTLS required (port 587) |
/// | `smtp://127.0.0.1:2525` | plain, unauthenticated: only for a local relay or a test server |
///
/// Credentials in the URL must be percent-encoded. Connections are pooled. Each message has a
/// plain-text and an HTML part (`multipart/alternative`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    // The URL may carry credentials: only the sender is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `url`, sending as `from` (`Name <address>` or `address`),
    /// failing a delivery that takes longer than `timeout`.
    ///
    /// # Errors
    /// An unparsable URL or sender address.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Self, BoxError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("invalid SMTP URL: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from: Mailbox = from.parse().map_err(|e| format!("invalid sender address {from:?}: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError> {
        let to: Mailbox = message.to.parse()?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .multipart(MultiPart::alternative_plain_html(message.text.clone(), message.html.clone()))?;
        self.transport.send(email).await?;
        Ok(())
    }
}
