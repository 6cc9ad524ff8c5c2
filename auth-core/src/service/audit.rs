//! The audit trail: every flow records its security events through [`Auth::audit`], which
//! fires [`AuthEvents::audited`](crate::AuthEvents::audited) for the host and appends the event to
//! the [`AuditStore`](crate::AuditStore), and the paged reads of the log.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditEventType, AuditOutcome, AuditQuery, AuditStore, Cursor, Page};
use crate::context::RequestContext;
use crate::error::{AuthError, FieldError};
use crate::input::ListAuditRequest;

use super::Auth;

/// Default page size of the admin lists.
pub(super) const DEFAULT_PAGE: u32 = 50;
/// Largest page size of the admin lists.
pub(super) const MAX_PAGE: u32 = 200;

/// Most audit writes in flight in the background; past it a request writes its event itself
/// before answering, so a slow audit store slows the requests that audit instead of piling up
/// tasks without bound.
const MAX_PENDING_WRITES: usize = 10_000;

/// How long [`Auth::flush_audit`] waits for the writes it waits for.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The audit writes in flight, by ticket: [`Auth::flush_audit`] waits for the tickets handed out
/// before it was called, never for later ones, and nobody waits for it.
#[derive(Debug, Default)]
pub(super) struct PendingWrites {
    state: Mutex<Tickets>,
    done: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Tickets {
    next: u64,
    in_flight: BTreeSet<u64>,
}

impl PendingWrites {
    /// A ticket for a write about to start, or `None` when too many are in flight. The write is
    /// finished when the ticket is dropped: also when its task is dropped unfinished (its runtime
    /// shut down), so [`flush`](Self::flush) never waits for a write that can no longer end.
    fn start(self: &Arc<Self>) -> Option<Ticket> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.in_flight.len() >= MAX_PENDING_WRITES {
            return None;
        }
        let ticket = state.next;
        state.next += 1;
        state.in_flight.insert(ticket);
        Some(Ticket { pending: Arc::clone(self), number: ticket })
    }

    fn finish(&self, ticket: u64) {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).in_flight.remove(&ticket);
        self.done.notify_waiters();
    }

    /// Whether every write with a ticket below `before` has finished.
    fn finished_before(&self, before: u64) -> bool {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.in_flight.first().is_none_or(|oldest| *oldest >= before)
    }

    /// Waits until the writes started so far have finished.
    async fn flush(&self) {
        let before = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next;
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.finished_before(before) {
                return;
            }
            done.await;
        }
    }
}

/// A write in flight ([`PendingWrites::start`]); dropping it finishes the write.
struct Ticket {
    pending: Arc<PendingWrites>,
    number: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pending.finish(self.number);
    }
}

/// An audit event being written: [`Auth::audit`] starts it, [`record`](Self::record) writes it.
#[must_use = "call .record().await to write the event"]
pub(super) struct Entry<'a> {
    auth: &'a Auth,
    event: AuditEvent,
}

impl Entry<'_> {
    /// Who acted, when not the user concerned (an admin; `None`: the operator or nobody).
    pub(super) fn actor(mut self, actor: Option<Uuid>) -> Self {
        self.event.actor_id = actor;
        self
    }

    /// The action was refused.
    pub(super) fn failed(mut self) -> Self {
        self.event.outcome = AuditOutcome::Failure;
        self
    }

    /// A non-secret fact about it.
    pub(super) fn detail(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.event.details.insert(name.to_owned(), value.into());
        self
    }

    /// Fires the hook and writes the event: in the background (a failure is logged at `error`),
    /// or, with [`AuthConfig::audit_required`](crate::AuthConfig::audit_required), before
    /// returning.
    ///
    /// # Errors
    /// `store_unavailable` when the write is required and failed.
    pub(super) async fn record(self) -> Result<(), AuthError> {
        let Entry { auth, event } = self;
        auth.inner.events.audited(&event);
        let Some(store) = auth.inner.audit.clone() else { return Ok(()) };
        if auth.inner.config.audit_required {
            return write(&*store, event).await.map_err(AuthError::from);
        }
        let Some(ticket) = auth.inner.audit_pending.start() else {
            // Too many writes in flight: this request waits for its own.
            let _ = write(&*store, event).await;
            return Ok(());
        };
        auth.spawn_background(async move {
            let _ = write(&*store, event).await;
            drop(ticket);
        });
        Ok(())
    }
}

/// Appends `event`, logging a failure with what identifies the event (never its details).
async fn write(store: &dyn AuditStore, event: AuditEvent) -> Result<(), crate::StoreError> {
    let (kind, id, user_id) = (event.kind, event.id, event.user_id);
    store.append_audit(event).await.inspect_err(|err| {
        tracing::error!(event_type = kind.as_str(), event_id = %id, ?user_id, error = %err, "audit event not written");
    })
}

/// A page size from its text: default [`DEFAULT_PAGE`], 1 to [`MAX_PAGE`].
pub(super) fn page_limit(limit: Option<&str>, fields: &mut Vec<FieldError>) -> u32 {
    match limit.map(str::trim) {
        None | Some("") => DEFAULT_PAGE,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                fields.push(FieldError::new("limit", format!("must be a whole number from 1 to {MAX_PAGE}")));
                DEFAULT_PAGE
            }
        },
    }
}

/// The id a cursor carries; a cursor we cannot have made is a field error.
pub(super) fn page_cursor(cursor: Option<&str>, fields: &mut Vec<FieldError>) -> Option<Uuid> {
    let cursor = cursor.map(str::trim).filter(|c| !c.is_empty())?;
    let decoded = Cursor::decode(cursor).map(|c| c.0);
    if decoded.is_none() {
        fields.push(FieldError::new("cursor", "is not a cursor this server handed out"));
    }
    decoded
}

fn time(name: &str, value: Option<&str>, fields: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    let parsed = DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).ok();
    if parsed.is_none() {
        fields.push(FieldError::new(name, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z"));
    }
    parsed
}

impl Auth {
    /// Starts the audit event `kind` about `user_id` (also the actor until
    /// [`actor`](Entry::actor) says otherwise), with the client of `ctx`.
    pub(super) fn audit(&self, kind: AuditEventType, user_id: Option<Uuid>, ctx: &RequestContext) -> Entry<'_> {
        Entry {
            auth: self,
            event: AuditEvent {
                id: Uuid::now_v7(),
                at: self.now(),
                kind,
                user_id,
                actor_id: user_id,
                ip: ctx.ip.map(|ip| ip.to_string()),
                user_agent: ctx.user_agent.clone(),
                outcome: AuditOutcome::Success,
                details: serde_json::Map::new(),
            },
        }
    }

    /// The audit store, or `not_found` when the service was built without one.
    pub(super) fn audit_store(&self) -> Result<&Arc<dyn AuditStore>, AuthError> {
        self.inner.audit.as_ref().ok_or(AuthError::NotFound)
    }

    /// Waits until every audit event recorded so far is written (or its failure logged), for
    /// at most 5 s; events recorded meanwhile are not waited for, and no request waits for the
    /// flush. Hosts call it at shutdown; tests call it before reading the log.
    pub async fn flush_audit(&self) {
        if tokio::time::timeout(FLUSH_TIMEOUT, self.inner.audit_pending.flush()).await.is_err() {
            tracing::warn!("audit events were still being written after 5 s; not waiting longer");
        }
    }

    /// A page of the audit log, newest first: `GET /admin/audit`, or with `only_user` the
    /// user's own events (`GET /me/audit`, where `user_id` is not accepted).
    ///
    /// # Errors
    /// `invalid_request` naming each bad parameter (`user_id`, `type`, `since`, `until`,
    /// `limit`, `cursor`), `not_found` without an audit store, `store_unavailable`.
    pub(super) async fn audit_page(
        &self,
        req: &ListAuditRequest,
        only_user: Option<Uuid>,
    ) -> Result<Page<AuditEvent>, AuthError> {
        let mut fields = Vec::new();
        let user_id = match (only_user, req.user_id.as_deref().map(str::trim).filter(|v| !v.is_empty())) {
            (Some(user), _) => Some(user),
            (None, Some(text)) => Uuid::parse_str(text)
                .inspect_err(|_| fields.push(FieldError::new("user_id", "must be a user id (UUID)")))
                .ok(),
            (None, None) => None,
        };
        let kind = match req.kind.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(name) => {
                let kind = AuditEventType::parse(name);
                if kind.is_none() {
                    fields.push(FieldError::new("type", "is not an audit event type (see docs/API.md)"));
                }
                kind
            }
        };
        let since = time("since", req.since.as_deref(), &mut fields);
        let until = time("until", req.until.as_deref(), &mut fields);
        let limit = page_limit(req.limit.as_deref(), &mut fields);
        let before = page_cursor(req.cursor.as_deref(), &mut fields);
        if !fields.is_empty() {
            return Err(AuthError::InvalidRequest { fields });
        }
        let store = self.audit_store()?;
        let query = AuditQuery { user_id, kind, since, until, before, limit: limit + 1 };
        let events = store.audit_events(&query).await?;
        Ok(Page::from_overfetch(events, limit, |e| e.id))
    }
}
