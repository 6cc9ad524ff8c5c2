//! Mail: the [`Mailer`] trait and its implementations — [`SmtpMailer`] (feature `mail-smtp`),
//! [`LogMailer`] for development, [`MemoryMailer`] for tests — and the [`MailTemplates`] that
//! word each message.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::BoxError;
use crate::input::EmailCodePurpose;

#[cfg(feature = "mail-smtp")]
mod smtp;
#[cfg(feature = "mail-smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mail-smtp")))]
pub use smtp::SmtpMailer;

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

/// Writes each message to the log at `INFO` (target `auth_core::mail`) instead of sending it.
///
/// By default only the recipient and subject are logged: bodies carry codes and reset links,
/// which must never reach a log. [`LogMailer::with_bodies`] logs the bodies too, so a developer
/// can read codes and links on a machine without a mail server; it warns once that the log then
/// holds live secrets. Never use that in production. An [`Auth`](crate::Auth) built without any
/// mailer has its email flows off; this mailer is only ever used when given by name.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer {
    bodies: bool,
}

impl LogMailer {
    /// Logs recipients and subjects only.
    #[must_use]
    pub fn new() -> Self {
        Self { bodies: false }
    }

    /// Logs message bodies too, codes and links included: development only.
    #[must_use]
    pub fn with_bodies() -> Self {
        tracing::warn!(
            target: "auth_core::mail",
            "the log mailer writes codes and reset links to the log: development only"
        );
        Self { bodies: true }
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError> {
        if self.bodies {
            tracing::info!(
                target: "auth_core::mail",
                to = %message.to,
                subject = %message.subject,
                "log mailer (development only) would send:\n{}",
                message.text
            );
        } else {
            tracing::info!(target: "auth_core::mail", to = %message.to, subject = %message.subject, "log mailer: not sent");
        }
        Ok(())
    }
}

/// Keeps every message in memory instead of sending it, for tests. Clones share the outbox.
#[derive(Debug, Clone, Default)]
pub struct MemoryMailer {
    outbox: Arc<Mutex<Vec<EmailMessage>>>,
}

impl MemoryMailer {
    /// An empty outbox.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message "sent" so far, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<EmailMessage> {
        self.outbox.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError> {
        self.outbox.lock().map_err(|_| "memory mailer lock poisoned")?.push(message.clone());
        Ok(())
    }
}

/// What a message is about, with what its template needs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum MailKind<'a> {
    /// A 6-digit code for `purpose`, valid for `ttl_minutes`.
    EmailCode {
        /// What the code is for.
        purpose: EmailCodePurpose,
        /// The code.
        code: &'a str,
        /// Minutes until it expires.
        ttl_minutes: u64,
    },
    /// A password-reset link, valid for `ttl_minutes`.
    PasswordReset {
        /// The link (built from the configured public URL, never from request headers).
        link: &'a str,
        /// Minutes until it expires.
        ttl_minutes: u64,
    },
    /// The password was changed (other sessions signed out) or reset (every session signed
    /// out). A notice: it carries no secret.
    PasswordChanged {
        /// `true` for a reset through a mailed code or link, `false` for a change by the user.
        reset: bool,
        /// When it happened.
        at: DateTime<Utc>,
        /// The client IP of the request that did it, when known.
        ip: Option<IpAddr>,
    },
    /// A 6-digit code, mailed to a new address, that confirms changing the account's address to
    /// it, valid for `ttl_minutes`.
    EmailChangeCode {
        /// The code.
        code: &'a str,
        /// Minutes until it expires.
        ttl_minutes: u64,
    },
    /// To the current address: someone logged in asked to change it to `new_email`. A notice.
    EmailChangeRequested {
        /// The address asked for.
        new_email: &'a str,
        /// When.
        at: DateTime<Utc>,
        /// The client IP of the request, when known.
        ip: Option<IpAddr>,
    },
    /// To the old address: the account's address is now `new_email`. A notice.
    EmailChanged {
        /// The new address.
        new_email: &'a str,
        /// When.
        at: DateTime<Utc>,
        /// The client IP of the request, when known.
        ip: Option<IpAddr>,
    },
    /// The account's second factor changed. A notice.
    SecondFactorChanged {
        /// What changed.
        change: SecondFactorChange,
        /// When.
        at: DateTime<Utc>,
        /// The client IP of the request, when known.
        ip: Option<IpAddr>,
    },
}

/// What [`MailKind::SecondFactorChanged`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondFactorChange {
    /// An authenticator app was set up; logins now need its codes.
    Enabled,
    /// The user turned the second factor off.
    Disabled,
    /// New recovery codes were made; the old ones no longer work.
    RecoveryCodesRegenerated,
    /// A recovery code was used (to log in, or to confirm a sensitive action).
    RecoveryCodeUsed,
    /// An administrator removed the second factor.
    ResetByAdmin,
}

/// Subject and bodies of one message.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Words each message. Implement it to change wording, language or branding; delegate to
/// [`DefaultTemplates`] for the messages you keep.
pub trait MailTemplates: Send + Sync + 'static {
    /// The subject and bodies for `mail`.
    fn render(&self, mail: &MailKind<'_>) -> RenderedMail;
}

/// Plain English templates naming `product` (default "your account").
#[derive(Debug, Clone)]
pub struct DefaultTemplates {
    /// Shown in subjects and greetings.
    pub product: String,
}

impl Default for DefaultTemplates {
    fn default() -> Self {
        Self { product: "your account".to_owned() }
    }
}

/// Escapes text for HTML element content and attribute values.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn minutes(n: u64) -> String {
    if n == 1 {
        "1 minute".to_owned()
    } else {
        format!("{n} minutes")
    }
}

impl MailTemplates for DefaultTemplates {
    fn render(&self, mail: &MailKind<'_>) -> RenderedMail {
        let product = &self.product;
        let html =
            |body: String| format!("<!doctype html><html><body style=\"font-family:sans-serif\">{body}</body></html>");
        match *mail {
            MailKind::EmailCode { purpose, code, ttl_minutes } => {
                let ttl = minutes(ttl_minutes);
                let (what, subject) = match purpose {
                    EmailCodePurpose::Register => ("finish creating", format!("Your code to create {product}")),
                    EmailCodePurpose::VerifyEmail => {
                        ("verify the email address of", format!("Your code to verify the email address of {product}"))
                    }
                    EmailCodePurpose::ResetPassword => {
                        ("reset the password of", format!("Your code to reset the password of {product}"))
                    }
                };
                RenderedMail {
                    subject,
                    text: format!(
                        "Your code to {what} {product} is {code}\n\nIt expires in {ttl}. \
                         If you did not ask for it, ignore this message.\n"
                    ),
                    html: html(format!(
                        "<p>Your code to {} {} is</p><p style=\"font-size:24px;letter-spacing:4px\"><b>{}</b></p>\
                         <p>It expires in {ttl}. If you did not ask for it, ignore this message.</p>",
                        escape_html(what),
                        escape_html(product),
                        escape_html(code)
                    )),
                }
            }
            MailKind::PasswordReset { link, ttl_minutes } => RenderedMail {
                subject: format!("Reset the password of {product}"),
                text: format!(
                    "To choose a new password, open this link:\n\n{link}\n\nIt works once and expires in {}. \
                     If you did not ask for it, ignore this message.\n",
                    minutes(ttl_minutes)
                ),
                html: html(format!(
                    "<p>To choose a new password, open <a href=\"{0}\">{0}</a></p><p>It works once and expires in \
                     {1}. If you did not ask for it, ignore this message.</p>",
                    escape_html(link),
                    minutes(ttl_minutes)
                )),
            },
            MailKind::PasswordChanged { reset, at, ip } => {
                let (what, signed_out) = if reset {
                    ("reset", "every session was signed out")
                } else {
                    ("changed", "every other session was signed out")
                };
                let when = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let from = ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                let sentence =
                    format!("The password of {product} was {what} at {when} (UTC) from {from}, and {signed_out}.");
                let advice = "If this was not you, reset your password now and contact support.";
                RenderedMail {
                    subject: format!("The password of {product} was {what}"),
                    text: format!("{sentence}\n\n{advice}\n"),
                    html: html(format!("<p>{}</p><p>{advice}</p>", escape_html(&sentence))),
                }
            }
            MailKind::EmailChangeCode { code, ttl_minutes } => {
                let ttl = minutes(ttl_minutes);
                RenderedMail {
                    subject: format!("Your code to move {product} to this address"),
                    text: format!(
                        "Your code to make this the email address of {product} is {code}\n\nIt expires in {ttl}. \
                         If you did not ask for it, ignore this message.\n"
                    ),
                    html: html(format!(
                        "<p>Your code to make this the email address of {} is</p>\
                         <p style=\"font-size:24px;letter-spacing:4px\"><b>{}</b></p>\
                         <p>It expires in {ttl}. If you did not ask for it, ignore this message.</p>",
                        escape_html(product),
                        escape_html(code)
                    )),
                }
            }
            MailKind::SecondFactorChanged { change, at, ip } => {
                let when = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let from = ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                let what = match change {
                    SecondFactorChange::Enabled => "two-step login was turned on",
                    SecondFactorChange::Disabled => "two-step login was turned off",
                    SecondFactorChange::RecoveryCodesRegenerated => {
                        "new recovery codes were made (the old ones no longer work)"
                    }
                    SecondFactorChange::RecoveryCodeUsed => "a recovery code was used",
                    SecondFactorChange::ResetByAdmin => "an administrator turned two-step login off",
                };
                let sentence = format!("For {product}, {what} at {when} (UTC) from {from}.");
                let advice = "If this was not you, change your password now and contact support.";
                RenderedMail {
                    subject: format!("Two-step login of {product} changed"),
                    text: format!("{sentence}\n\n{advice}\n"),
                    html: html(format!("<p>{}</p><p>{advice}</p>", escape_html(&sentence))),
                }
            }
            MailKind::EmailChangeRequested { new_email, at, ip } | MailKind::EmailChanged { new_email, at, ip } => {
                let done = matches!(mail, MailKind::EmailChanged { .. });
                let when = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let from = ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                let (subject, sentence) = if done {
                    (
                        format!("The email address of {product} was changed"),
                        format!(
                            "The email address of {product} was changed to {new_email} at {when} (UTC) from {from}."
                        ),
                    )
                } else {
                    (
                        format!("A change of the email address of {product} was requested"),
                        format!(
                            "At {when} (UTC), from {from}, someone logged in to {product} asked to change its email \
                             address to {new_email}. This address stays in use until the change is confirmed."
                        ),
                    )
                };
                let advice = "If this was not you, change your password now and contact support.";
                RenderedMail {
                    subject,
                    text: format!("{sentence}\n\n{advice}\n"),
                    html: html(format!("<p>{}</p><p>{advice}</p>", escape_html(&sentence))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_html_and_carry_the_code_and_link() {
        let t = DefaultTemplates { product: "<Acme>".into() };
        let m = t.render(&MailKind::EmailCode { purpose: EmailCodePurpose::Register, code: "012345", ttl_minutes: 10 });
        assert!(m.text.contains("012345") && m.html.contains("012345"));
        assert!(m.html.contains("&lt;Acme&gt;") && !m.html.contains("<Acme>"));
        let m = t.render(&MailKind::PasswordReset { link: "https://a.example/r?token=x&y=\"", ttl_minutes: 30 });
        assert!(m.text.contains("https://a.example/r?token=x&y=\""));
        assert!(m.html.contains("token=x&amp;y=&quot;"));
    }
}
