//! One suite of store tests, run against every backend (`memory` always, `sqlite` with its
//! feature). Each `case_*` function states one behaviour of the store contracts in
//! `auth_core::store`.

use std::sync::Arc;

use auth_core::mfa::{ChallengeOutcome, ChallengePurpose, FactorUse, MfaChallenge, TotpFactor};
use auth_core::{
    AuditEvent, AuditEventType, AuditOutcome, AuditQuery, AuditStore, AuthMethod, MfaStore, NewSecret, NewUser,
    OnMismatch, Role, RotationOutcome, RotationRequest, SecretCheck, SecretStore, SessionStore, StoreError, TokenHash,
    UserQuery, UserStatus, UserStore, UserUpdate,
};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

#[cfg(feature = "postgres")]
use auth_test_support::fresh_postgres_database;
use auth_test_support::new_session;
#[cfg(feature = "redis")]
use auth_test_support::service_url;

/// A backend of users, sessions, secrets, the audit log and second factors (memory, SQLite,
/// PostgreSQL).
trait Store: UserStore + SessionStore + SecretStore + AuditStore + MfaStore {}
impl<T: UserStore + SessionStore + SecretStore + AuditStore + MfaStore> Store for T {}

/// A backend of sessions and secrets: every full backend, and Redis, which keeps no users.
trait Tokens: SessionStore + SecretStore {}
impl<T: SessionStore + SecretStore> Tokens for T {}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn new_user(username: Option<&str>, email: Option<&str>) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        username: username.map(str::to_owned),
        email: email.map(str::to_owned),
        email_verified: false,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        role: Role::user(),
        created_at: now(),
    }
}

fn rotation(presented: &str, successor: &str, at: DateTime<Utc>) -> RotationRequest {
    RotationRequest {
        presented: TokenHash::of(presented),
        successor: Some(TokenHash::of(successor)),
        now: at,
        reuse_grace: TimeDelta::seconds(10),
        idle_timeout: TimeDelta::days(7),
    }
}

fn secret(key: &str, value: &str, expires_at: DateTime<Utc>, max_attempts: u32) -> NewSecret {
    NewSecret {
        purpose: "email_code:register".into(),
        key: key.into(),
        hash: TokenHash::of(value),
        expires_at,
        max_attempts,
    }
}

async fn case_users_are_found_by_id_username_and_email_case_insensitively(s: Arc<dyn Store>) {
    let created = s.create_user(new_user(Some("Alice"), Some("Alice@example.com"))).await.unwrap();
    assert_eq!(created.username.as_deref(), Some("Alice"));
    assert_eq!(created.status, UserStatus::Active);
    let by_id = s.user_by_id(created.id).await.unwrap().unwrap();
    assert_eq!(by_id.user, created);
    assert!(by_id.password_hash.starts_with("$argon2id$"));
    assert_eq!(s.user_by_username("aLiCe").await.unwrap().unwrap().user.id, created.id);
    assert_eq!(s.user_by_email("alice@EXAMPLE.com").await.unwrap().unwrap().user.id, created.id);
    assert!(s.user_by_username("bob").await.unwrap().is_none());
    assert!(s.user_by_email("bob@example.com").await.unwrap().is_none());
    assert!(s.user_by_id(Uuid::new_v4()).await.unwrap().is_none());
}

async fn case_usernames_and_emails_are_unique_case_insensitively(s: Arc<dyn Store>) {
    s.create_user(new_user(Some("carol"), Some("carol@example.com"))).await.unwrap();
    let err = s.create_user(new_user(Some("CAROL"), None)).await.unwrap_err();
    assert!(matches!(err, StoreError::UsernameTaken), "{err:?}");
    let err = s.create_user(new_user(Some("carol2"), Some("CAROL@example.com"))).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    // Several users without an email or without a username do not collide on NULL.
    s.create_user(new_user(Some("dave"), None)).await.unwrap();
    s.create_user(new_user(None, Some("erin@example.com"))).await.unwrap();
    s.create_user(new_user(None, Some("frank@example.com"))).await.unwrap();
}

async fn case_concurrent_creation_of_one_username_succeeds_exactly_once(s: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            let name = if i % 2 == 0 { "racer" } else { "RACER" };
            tokio::spawn(async move { s.create_user(new_user(Some(name), None)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::UsernameTaken) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

async fn case_update_user_writes_only_the_given_fields(s: Arc<dyn Store>) {
    let user = s.create_user(new_user(Some("grace"), None)).await.unwrap();
    let later = user.created_at + TimeDelta::seconds(5);
    let mut prefs = user.preferences.clone();
    prefs.language = "zh-CN".into();
    let updated = s
        .update_user(
            user.id,
            UserUpdate::new().role(Role::admin()).preferences(prefs.clone()).last_login_at(later),
            later,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.role, Role::admin());
    assert_eq!(updated.preferences, prefs);
    assert_eq!(updated.last_login_at, Some(later));
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.status, UserStatus::Active);
    let stored = s.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.user, updated);
    let rehashed =
        s.update_user(user.id, UserUpdate::new().password_hash("$argon2id$new".into()), later).await.unwrap();
    assert!(rehashed.is_some());
    assert_eq!(s.user_by_id(user.id).await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(s.update_user(Uuid::new_v4(), UserUpdate::new(), later).await.unwrap().is_none());
}

async fn case_update_user_preconditions_are_compare_and_set(s: Arc<dyn Store>) {
    let user = s.create_user(new_user(Some("heidi"), None)).await.unwrap();
    let old_hash = s.user_by_id(user.id).await.unwrap().unwrap().password_hash;
    let later = user.created_at + TimeDelta::seconds(5);
    // A password reset lands first...
    s.update_user(user.id, UserUpdate::new().password_hash("$argon2id$reset".into()), later).await.unwrap().unwrap();
    // ...so a login's compare-and-set on the hash it verified changes nothing.
    let stale = UserUpdate::new()
        .last_login_at(later)
        .password_hash("$argon2id$rehash-of-old".into())
        .only_if_password_hash(old_hash)
        .only_if_status(UserStatus::Active);
    assert!(s.update_user(user.id, stale, later).await.unwrap().is_none());
    let stored = s.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$argon2id$reset");
    assert_eq!(stored.user.last_login_at, None);
    // A status precondition: disabled accounts do not record a login.
    s.update_user(user.id, UserUpdate::new().status(UserStatus::Disabled), later).await.unwrap().unwrap();
    let current = UserUpdate::new()
        .last_login_at(later)
        .only_if_password_hash("$argon2id$reset".into())
        .only_if_status(UserStatus::Active);
    assert!(s.update_user(user.id, current.clone(), later).await.unwrap().is_none());
    // Both hold: applied.
    s.update_user(user.id, UserUpdate::new().status(UserStatus::Active), later).await.unwrap().unwrap();
    let updated = s.update_user(user.id, current, later).await.unwrap().unwrap();
    assert_eq!(updated.last_login_at, Some(later));
}

async fn case_identifiers_are_compared_by_their_unicode_key(s: Arc<dyn Store>) {
    // Full-width letters are their ASCII letters; ß, ẞ and ss are one key; İ folds alike everywhere.
    let full_width = s.create_user(new_user(None, Some("ｉｖａｎ@example.com"))).await.unwrap();
    let found = s.user_by_email("IVAN@example.com").await.unwrap().unwrap();
    assert_eq!(found.user.id, full_width.id);
    assert_eq!(found.user.email.as_deref(), Some("ｉｖａｎ@example.com"), "stored as given");
    assert!(matches!(s.create_user(new_user(None, Some("Ivan@example.com"))).await, Err(StoreError::EmailTaken)));

    let sharp = s.create_user(new_user(None, Some("straße@example.com"))).await.unwrap();
    for variant in ["STRASSE@example.com", "strasse@example.com", "STRAẞE@example.com"] {
        assert_eq!(s.user_by_email(variant).await.unwrap().map(|r| r.user.id), Some(sharp.id), "{variant}");
    }
    assert!(matches!(s.create_user(new_user(None, Some("strasse@example.com"))).await, Err(StoreError::EmailTaken)));

    let dotted = s.create_user(new_user(None, Some("İnci@example.com"))).await.unwrap();
    assert_eq!(s.user_by_email("i\u{307}nci@example.com").await.unwrap().map(|r| r.user.id), Some(dotted.id));
    // A plain i is another letter.
    assert!(s.user_by_email("inci@example.com").await.unwrap().is_none());
    s.create_user(new_user(None, Some("inci@example.com"))).await.unwrap();
}

async fn case_list_users_pages_by_id_and_filters_by_prefix_status_and_role(s: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for (name, email) in [("alice", None), ("Alicia", None), ("bob", Some("ALberto@example.com")), ("carl", None)] {
        ids.push(s.create_user(new_user(Some(name), email)).await.unwrap().id);
    }
    let names = |users: Vec<auth_core::User>| -> Vec<String> { users.into_iter().filter_map(|u| u.username).collect() };
    // Keyset pages in id (creation) order.
    let mut first = UserQuery::new(2);
    assert_eq!(names(s.list_users(&first).await.unwrap()), ["alice", "Alicia"]);
    first.after = Some(ids[1]);
    assert_eq!(names(s.list_users(&first).await.unwrap()), ["bob", "carl"]);
    // A prefix matches usernames and emails case-insensitively (as identifier keys).
    let mut prefix = UserQuery::new(10);
    prefix.prefix = Some("al".into());
    assert_eq!(names(s.list_users(&prefix).await.unwrap()), ["alice", "Alicia", "bob"]);
    prefix.prefix = Some("alic".into());
    prefix.after = Some(ids[0]);
    assert_eq!(names(s.list_users(&prefix).await.unwrap()), ["Alicia"]);
    // Status and role.
    let at = now() + TimeDelta::seconds(1);
    s.update_user(ids[3], UserUpdate::new().status(UserStatus::Disabled).role(Role::admin()), at).await.unwrap();
    let mut disabled = UserQuery::new(10);
    disabled.status = Some(UserStatus::Disabled);
    assert_eq!(names(s.list_users(&disabled).await.unwrap()), ["carl"]);
    let mut admins = UserQuery::new(10);
    admins.role = Some(Role::admin());
    admins.status = Some(UserStatus::Active);
    assert!(s.list_users(&admins).await.unwrap().is_empty());
}

async fn case_update_user_changes_identifiers_and_refuses_taken_ones(s: Arc<dyn Store>) {
    let ann = s.create_user(new_user(Some("ann"), Some("ann@example.com"))).await.unwrap();
    s.create_user(new_user(Some("ben"), Some("ben@example.com"))).await.unwrap();
    let at = now() + TimeDelta::seconds(1);
    // Taken by someone else, compared by identifier key: refused, nothing changed.
    let taken = s.update_user(ann.id, UserUpdate::new().username("BEN".into()).email_verified(true), at).await;
    assert!(matches!(taken, Err(StoreError::UsernameTaken)), "{taken:?}");
    let taken = s.update_user(ann.id, UserUpdate::new().email("Ben@Example.com".into()), at).await;
    assert!(matches!(taken, Err(StoreError::EmailTaken)), "{taken:?}");
    let stored = s.user_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!((stored.user.username.as_deref(), stored.user.email_verified), (Some("ann"), false));
    // Free ones: found under the new names, the old ones free again.
    let update = UserUpdate::new().username("anna".into()).email("anna@example.com".into());
    s.update_user(ann.id, update, at).await.unwrap().unwrap();
    assert_eq!(s.user_by_username("ANNA").await.unwrap().unwrap().user.id, ann.id);
    assert_eq!(s.user_by_email("anna@example.com").await.unwrap().unwrap().user.id, ann.id);
    assert!(s.user_by_username("ann").await.unwrap().is_none());
    s.create_user(new_user(Some("ann"), Some("ann@example.com"))).await.unwrap();
    // A pending address is kept on the record until cleared.
    s.update_user(ann.id, UserUpdate::new().pending_email(Some("new@example.com".into())), at).await.unwrap();
    assert_eq!(s.user_by_id(ann.id).await.unwrap().unwrap().pending_email.as_deref(), Some("new@example.com"));
    s.update_user(ann.id, UserUpdate::new().pending_email(None), at).await.unwrap();
    assert_eq!(s.user_by_id(ann.id).await.unwrap().unwrap().pending_email, None);
}

/// An active admin named `name`.
async fn admin(s: &Arc<dyn Store>, name: &str) -> Uuid {
    let mut new = new_user(Some(name), None);
    new.role = Role::admin();
    s.create_user(new).await.unwrap().id
}

async fn case_the_last_active_admin_cannot_be_demoted_disabled_or_deleted(s: Arc<dyn Store>) {
    let (a, b) = (admin(&s, "admin-a").await, admin(&s, "admin-b").await);
    let at = now() + TimeDelta::seconds(1);
    let demote = || UserUpdate::new().role(Role::user()).only_if_an_admin_remains();
    // Two admins: one may go.
    assert!(s.update_user(a, demote(), at).await.unwrap().is_some());
    // Now b is the last one: demoting, disabling or deleting it under the guard changes nothing.
    assert!(s.update_user(b, demote(), at).await.unwrap().is_none());
    let disable = UserUpdate::new().status(UserStatus::Disabled).only_if_an_admin_remains();
    assert!(s.update_user(b, disable, at).await.unwrap().is_none());
    assert!(!s.delete_user(b, true).await.unwrap());
    let stored = s.user_by_id(b).await.unwrap().unwrap().user;
    assert!(stored.is_active_admin());
    // A disabled admin does not count as the other admin.
    s.update_user(a, UserUpdate::new().role(Role::admin()).status(UserStatus::Disabled), at).await.unwrap();
    assert!(!s.delete_user(b, true).await.unwrap());
    // The guard judges the stored row: a user who is not an active admin changes under it.
    let user = s.create_user(new_user(Some("plain-user"), None)).await.unwrap().id;
    assert!(s.update_user(user, demote(), at).await.unwrap().is_some());
    // Users that are not active admins are deleted under the guard; without it, anyone is.
    assert!(s.delete_user(a, true).await.unwrap());
    assert!(s.delete_user(b, false).await.unwrap());
    assert!(!s.delete_user(b, false).await.unwrap(), "already gone");
}

async fn case_concurrent_demotions_of_the_two_last_admins_leave_one(s: Arc<dyn Store>) {
    let admins = [admin(&s, "race-a").await, admin(&s, "race-b").await];
    let at = now() + TimeDelta::seconds(1);
    let tasks: Vec<_> = admins
        .iter()
        .map(|id| {
            let (s, id) = (s.clone(), *id);
            tokio::spawn(async move {
                let update = UserUpdate::new().role(Role::user()).only_if_an_admin_remains();
                s.update_user(id, update, at).await.unwrap().is_some()
            })
        })
        .collect();
    let mut demoted = 0;
    for task in tasks {
        demoted += usize::from(task.await.unwrap());
    }
    assert_eq!(demoted, 1);
}

async fn case_deleting_a_user_frees_the_username_and_email(s: Arc<dyn Store>) {
    let gone = s.create_user(new_user(Some("gone"), Some("gone@example.com"))).await.unwrap();
    assert!(s.delete_user(gone.id, true).await.unwrap());
    assert!(s.user_by_id(gone.id).await.unwrap().is_none());
    assert!(s.user_by_username("gone").await.unwrap().is_none());
    assert!(s.user_by_email("gone@example.com").await.unwrap().is_none());
    s.create_user(new_user(Some("GONE"), Some("Gone@example.com"))).await.unwrap();
}

fn audit_event(kind: AuditEventType, user_id: Option<Uuid>, at: DateTime<Utc>) -> AuditEvent {
    let mut details = serde_json::Map::new();
    details.insert("reason".into(), "wrong_password".into());
    AuditEvent {
        id: Uuid::now_v7(),
        at,
        kind,
        user_id,
        actor_id: user_id,
        ip: Some("203.0.113.9".into()),
        user_agent: Some("tests/1.0".into()),
        outcome: AuditOutcome::Failure,
        details,
    }
}

async fn case_audit_events_are_paged_newest_first_filtered_purged_and_forgotten(s: Arc<dyn Store>) {
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let t0 = now() - TimeDelta::days(100);
    let old = audit_event(AuditEventType::LoginFailed, Some(alice), t0);
    let a1 = audit_event(AuditEventType::LoginFailed, Some(alice), t0 + TimeDelta::days(95));
    let b1 = audit_event(AuditEventType::Registered, Some(bob), t0 + TimeDelta::days(96));
    let a2 = audit_event(AuditEventType::LoggedOut, Some(alice), t0 + TimeDelta::days(97));
    for e in [&old, &a1, &b1, &a2] {
        s.append_audit(e.clone()).await.unwrap();
    }
    let ids = |events: Vec<AuditEvent>| -> Vec<Uuid> { events.into_iter().map(|e| e.id).collect() };
    // Newest first, whole events round-trip.
    let all = s.audit_events(&AuditQuery::new(10)).await.unwrap();
    assert_eq!(all[0], a2);
    assert_eq!(ids(all), [a2.id, b1.id, a1.id, old.id]);
    // Keyset paging with `before`, and each filter.
    let mut page = AuditQuery::new(2);
    page.before = Some(b1.id);
    assert_eq!(ids(s.audit_events(&page).await.unwrap()), [a1.id, old.id]);
    let mut mine = AuditQuery::new(10);
    mine.user_id = Some(alice);
    assert_eq!(ids(s.audit_events(&mine).await.unwrap()), [a2.id, a1.id, old.id]);
    mine.kind = Some(AuditEventType::LoginFailed);
    mine.since = Some(a1.at);
    assert_eq!(ids(s.audit_events(&mine).await.unwrap()), [a1.id]);
    let mut until = AuditQuery::new(10);
    until.until = Some(a1.at);
    assert_eq!(ids(s.audit_events(&until).await.unwrap()), [old.id]);
    // Retention: older than the cut-off goes.
    assert_eq!(s.purge_audit(t0 + TimeDelta::days(1)).await.unwrap(), 1);
    // A deleted account's events go; others stay.
    assert_eq!(s.forget_user_audit(alice).await.unwrap(), 2);
    assert_eq!(ids(s.audit_events(&AuditQuery::new(10)).await.unwrap()), [b1.id]);
}

async fn case_deleting_a_users_sessions_removes_them_with_their_tokens(s: Arc<dyn Tokens>) {
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let at = now();
    let a = new_session(user, "del-a", at);
    let b = new_session(user, "del-b", at);
    let kept = new_session(other, "del-kept", at);
    for s_ in [&a, &b, &kept] {
        s.create_session(s_.clone()).await.unwrap();
    }
    assert!(matches!(
        s.rotate_refresh_token(rotation("del-a", "del-a-2", at)).await.unwrap(),
        RotationOutcome::Rotated(_)
    ));
    s.revoke_session(b.session.id, at).await.unwrap();
    assert_eq!(s.delete_user_sessions(user, at).await.unwrap(), 2, "live and revoked alike");
    for gone in [a.session.id, b.session.id] {
        assert!(s.session(gone).await.unwrap().is_none());
        assert!(!s.session_is_live(gone, user, at).await.unwrap());
    }
    for token in ["del-a", "del-a-2", "del-b"] {
        let later = at + TimeDelta::seconds(1);
        assert_eq!(
            s.rotate_refresh_token(rotation(token, "x", later)).await.unwrap(),
            RotationOutcome::Unknown,
            "{token}"
        );
    }
    assert!(s.user_sessions(user, at).await.unwrap().is_empty());
    assert!(s.session_is_live(kept.session.id, other, at).await.unwrap(), "another user's session stays");
    assert_eq!(s.delete_user_sessions(user, at).await.unwrap(), 0);
}

async fn case_sessions_are_created_listed_and_revoked(s: Arc<dyn Tokens>) {
    let user = Uuid::now_v7();
    let at = now();
    let a = new_session(user, "rt-a", at);
    let b = new_session(user, "rt-b", at + TimeDelta::seconds(1));
    let other = new_session(Uuid::now_v7(), "rt-c", at);
    for s_ in [&a, &b, &other] {
        s.create_session(s_.clone()).await.unwrap();
    }
    assert_eq!(s.session(a.session.id).await.unwrap().unwrap(), a.session);
    let listed: Vec<Uuid> = s.user_sessions(user, at).await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(listed, [b.session.id, a.session.id], "newest first, only this user's");
    assert!(s.session_is_live(a.session.id, user, at).await.unwrap());
    assert!(!s.session_is_live(a.session.id, Uuid::now_v7(), at).await.unwrap(), "another user's session");
    assert!(!s.session_is_live(a.session.id, user, at + TimeDelta::days(31)).await.unwrap(), "expired");
    assert!(!s.session_is_live(Uuid::new_v4(), user, at).await.unwrap(), "unknown");
    assert!(s.revoke_session(a.session.id, at).await.unwrap());
    assert!(!s.session_is_live(a.session.id, user, at).await.unwrap(), "revoked");
    assert!(!s.revoke_session(a.session.id, at).await.unwrap(), "second revoke reports false");
    assert!(!s.session(a.session.id).await.unwrap().unwrap().is_live(at));
    assert_eq!(s.user_sessions(user, at).await.unwrap().len(), 1);
    // Expired sessions are not listed.
    assert!(s.user_sessions(user, at + TimeDelta::days(31)).await.unwrap().is_empty());
    assert!(s.session(Uuid::new_v4()).await.unwrap().is_none());
}

async fn case_a_session_keeps_how_it_was_authenticated(s: Arc<dyn Tokens>) {
    let user = Uuid::now_v7();
    let at = now();
    for (n, method) in [AuthMethod::Password, AuthMethod::EmailCode, AuthMethod::External].into_iter().enumerate() {
        let mut new = new_session(user, &format!("rt-method-{n}"), at);
        new.session.auth_method = method;
        s.create_session(new.clone()).await.unwrap();
        assert_eq!(s.session(new.session.id).await.unwrap().unwrap().auth_method, method);
        // Rotation continues the session: the method stays.
        let rotated = s.rotate_refresh_token(rotation(&format!("rt-method-{n}"), &format!("rt-next-{n}"), at)).await;
        match rotated.unwrap() {
            RotationOutcome::Rotated(session) => assert_eq!(session.auth_method, method),
            other => panic!("expected a rotation, got {other:?}"),
        }
    }
}

async fn case_revoking_all_of_a_users_sessions_can_keep_one(s: Arc<dyn Tokens>) {
    let user = Uuid::now_v7();
    let at = now();
    let keep = new_session(user, "keep", at);
    s.create_session(keep.clone()).await.unwrap();
    for i in 0..3 {
        s.create_session(new_session(user, &format!("other-{i}"), at)).await.unwrap();
    }
    let bystander = new_session(Uuid::now_v7(), "bystander", at);
    s.create_session(bystander.clone()).await.unwrap();
    assert_eq!(s.revoke_user_sessions(user, Some(keep.session.id), at).await.unwrap(), 3);
    let left: Vec<Uuid> = s.user_sessions(user, at).await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(left, [keep.session.id]);
    assert!(s.session(bystander.session.id).await.unwrap().unwrap().is_live(at));
    assert_eq!(s.revoke_user_sessions(user, None, at).await.unwrap(), 1);
    assert!(s.user_sessions(user, at).await.unwrap().is_empty());
}

async fn case_rotation_spends_the_token_and_makes_the_successor_current(s: Arc<dyn Tokens>) {
    let at = now();
    let new = new_session(Uuid::now_v7(), "t0", at);
    s.create_session(new.clone()).await.unwrap();
    let later = at + TimeDelta::seconds(60);
    let RotationOutcome::Rotated(session) = s.rotate_refresh_token(rotation("t0", "t1", later)).await.unwrap() else {
        panic!("expected Rotated")
    };
    assert_eq!(session.id, new.session.id);
    assert_eq!(session.last_used_at, later);
    assert_eq!(s.session(session.id).await.unwrap().unwrap().last_used_at, later);
    assert!(matches!(s.rotate_refresh_token(rotation("t1", "t2", later)).await.unwrap(), RotationOutcome::Rotated(_)));
    assert_eq!(s.rotate_refresh_token(rotation("never-issued", "x", later)).await.unwrap(), RotationOutcome::Unknown);
}

/// A request with rotation off (no successor).
fn keep(presented: &str, at: DateTime<Utc>) -> RotationRequest {
    RotationRequest { successor: None, ..rotation(presented, "unused", at) }
}

async fn case_with_rotation_off_the_token_stays_current_and_the_session_is_touched(s: Arc<dyn Tokens>) {
    let at = now();
    let new = new_session(Uuid::now_v7(), "k0", at);
    s.create_session(new.clone()).await.unwrap();
    let day = TimeDelta::days(1);
    for n in 1..=3 {
        let later = at + day * n;
        let RotationOutcome::Kept(session) = s.rotate_refresh_token(keep("k0", later)).await.unwrap() else {
            panic!("expected Kept on use {n}")
        };
        assert_eq!((session.id, session.last_used_at), (new.session.id, later));
        assert_eq!(s.session(session.id).await.unwrap().unwrap().last_used_at, later, "stored");
    }
    // Used on day 3: idle (7 days) from day 10 on, not before.
    assert!(matches!(s.rotate_refresh_token(keep("k0", at + day * 9)).await.unwrap(), RotationOutcome::Kept(_)));
    assert_eq!(s.rotate_refresh_token(keep("k0", at + day * 17)).await.unwrap(), RotationOutcome::Unknown, "idle");
    assert_eq!(s.rotate_refresh_token(keep("never-issued", at)).await.unwrap(), RotationOutcome::Unknown);
    s.revoke_session(new.session.id, at + day * 10).await.unwrap();
    assert_eq!(s.rotate_refresh_token(keep("k0", at + day * 10)).await.unwrap(), RotationOutcome::Unknown, "revoked");
}

async fn case_with_rotation_off_a_token_spent_while_it_was_on_is_reuse(s: Arc<dyn Tokens>) {
    let at = now();
    let new = new_session(Uuid::now_v7(), "o0", at);
    s.create_session(new.clone()).await.unwrap();
    assert!(matches!(s.rotate_refresh_token(rotation("o0", "o1", at)).await.unwrap(), RotationOutcome::Rotated(_)));
    // The current token keeps working with rotation off…
    assert!(matches!(s.rotate_refresh_token(keep("o1", at)).await.unwrap(), RotationOutcome::Kept(_)));
    // …and the spent one, even within the grace window, is reuse: the session dies.
    let reused = s.rotate_refresh_token(keep("o0", at + TimeDelta::seconds(1))).await.unwrap();
    assert!(matches!(reused, RotationOutcome::Reused(ref x) if x.id == new.session.id), "{reused:?}");
    assert!(s.session(new.session.id).await.unwrap().unwrap().revoked_at.is_some());
}

async fn case_a_spent_token_within_the_grace_window_returns_grace(s: Arc<dyn Tokens>) {
    let at = now();
    let new = new_session(Uuid::now_v7(), "g0", at);
    s.create_session(new.clone()).await.unwrap();
    s.rotate_refresh_token(rotation("g0", "g1", at)).await.unwrap();
    let again = s.rotate_refresh_token(rotation("g0", "g1", at + TimeDelta::seconds(10))).await.unwrap();
    assert!(matches!(again, RotationOutcome::Grace(ref x) if x.id == new.session.id), "{again:?}");
    // Nothing changed: the successor still rotates normally.
    assert!(matches!(s.rotate_refresh_token(rotation("g1", "g2", at)).await.unwrap(), RotationOutcome::Rotated(_)));
}

async fn case_a_spent_token_after_the_grace_window_revokes_the_session(s: Arc<dyn Tokens>) {
    let at = now();
    let new = new_session(Uuid::now_v7(), "r0", at);
    s.create_session(new.clone()).await.unwrap();
    s.rotate_refresh_token(rotation("r0", "r1", at)).await.unwrap();
    let late = at + TimeDelta::seconds(11);
    let out = s.rotate_refresh_token(rotation("r0", "r1", late)).await.unwrap();
    assert!(
        matches!(out, RotationOutcome::Reused(ref x) if x.id == new.session.id && x.revoked_at == Some(late)),
        "{out:?}"
    );
    assert_eq!(s.session(new.session.id).await.unwrap().unwrap().revoked_at, Some(late));
    // The whole family is dead: the successor no longer works.
    assert_eq!(s.rotate_refresh_token(rotation("r1", "r2", late)).await.unwrap(), RotationOutcome::Unknown);
}

async fn case_a_spent_token_whose_successor_was_spent_is_reuse_even_within_grace(s: Arc<dyn Tokens>) {
    let at = now();
    let new = new_session(Uuid::now_v7(), "s0", at);
    s.create_session(new.clone()).await.unwrap();
    s.rotate_refresh_token(rotation("s0", "s1", at)).await.unwrap();
    s.rotate_refresh_token(rotation("s1", "s2", at)).await.unwrap();
    assert!(matches!(s.rotate_refresh_token(rotation("s0", "s1", at)).await.unwrap(), RotationOutcome::Reused(_)));
    assert!(!s.session(new.session.id).await.unwrap().unwrap().is_live(at));
}

async fn case_expired_idle_or_revoked_sessions_do_not_rotate(s: Arc<dyn Tokens>) {
    let at = now();
    let expired = new_session(Uuid::now_v7(), "e0", at);
    s.create_session(expired.clone()).await.unwrap();
    assert_eq!(
        s.rotate_refresh_token(rotation("e0", "e1", at + TimeDelta::days(31))).await.unwrap(),
        RotationOutcome::Unknown
    );
    let idle = new_session(Uuid::now_v7(), "i0", at);
    s.create_session(idle.clone()).await.unwrap();
    assert_eq!(
        s.rotate_refresh_token(rotation("i0", "i1", at + TimeDelta::days(8))).await.unwrap(),
        RotationOutcome::Unknown
    );
    // A refused rotation spends nothing: within the idle window the token still works.
    assert!(matches!(
        s.rotate_refresh_token(rotation("i0", "i1", at + TimeDelta::days(6))).await.unwrap(),
        RotationOutcome::Rotated(_)
    ));
    let revoked = new_session(Uuid::now_v7(), "v0", at);
    s.create_session(revoked.clone()).await.unwrap();
    s.revoke_session(revoked.session.id, at).await.unwrap();
    assert_eq!(s.rotate_refresh_token(rotation("v0", "v1", at)).await.unwrap(), RotationOutcome::Unknown);
}

async fn case_concurrent_rotations_of_one_token_rotate_exactly_once(s: Arc<dyn Tokens>) {
    let at = now();
    s.create_session(new_session(Uuid::now_v7(), "c0", at)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.rotate_refresh_token(rotation("c0", "c1", at)).await.unwrap() })
        })
        .collect();
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap() {
            RotationOutcome::Rotated(_) => rotated += 1,
            RotationOutcome::Grace(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
}

async fn case_a_secret_is_taken_once(s: Arc<dyn Tokens>) {
    let at = now();
    s.put_secret(secret("a@example.com", "123456", at + TimeDelta::minutes(10), 5), at).await.unwrap();
    let good = TokenHash::of("123456");
    let purpose = "email_code:register";
    assert_eq!(
        s.take_secret(purpose, "a@example.com", &good, OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Valid
    );
    assert_eq!(
        s.take_secret(purpose, "a@example.com", &good, OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Missing
    );
    assert_eq!(
        s.take_secret(purpose, "nobody", &good, OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Missing
    );
    // Another purpose is another secret.
    s.put_secret(secret("a@example.com", "123456", at + TimeDelta::minutes(10), 5), at).await.unwrap();
    assert_eq!(
        s.take_secret("other", "a@example.com", &good, OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Missing
    );
}

async fn case_wrong_attempts_are_capped(s: Arc<dyn Tokens>) {
    let at = now();
    let purpose = "email_code:register";
    s.put_secret(secret("b@example.com", "111111", at + TimeDelta::minutes(10), 3), at).await.unwrap();
    let bad = TokenHash::of("999999");
    let good = TokenHash::of("111111");
    for left in [2, 1] {
        assert_eq!(
            s.take_secret(purpose, "b@example.com", &bad, OnMismatch::CountAttempt, at).await.unwrap(),
            SecretCheck::Invalid { attempts_left: left }
        );
    }
    // Re-sending a code replaces it but keeps the failure count.
    s.put_secret(secret("b@example.com", "222222", at + TimeDelta::minutes(10), 3), at).await.unwrap();
    assert_eq!(
        s.take_secret(purpose, "b@example.com", &good, OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Invalid { attempts_left: 0 },
        "the old code is gone and the third failure kills the new one"
    );
    assert_eq!(
        s.take_secret(purpose, "b@example.com", &TokenHash::of("222222"), OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Missing
    );
}

async fn case_spend_on_mismatch_kills_the_secret_at_the_first_wrong_answer(s: Arc<dyn Tokens>) {
    let at = now();
    s.put_secret(NewSecret { purpose: "captcha".into(), ..secret("id-1", "ab12", at + TimeDelta::minutes(5), 1) }, at)
        .await
        .unwrap();
    assert_eq!(
        s.take_secret("captcha", "id-1", &TokenHash::of("zzzz"), OnMismatch::Spend, at).await.unwrap(),
        SecretCheck::Invalid { attempts_left: 0 }
    );
    assert_eq!(
        s.take_secret("captcha", "id-1", &TokenHash::of("ab12"), OnMismatch::Spend, at).await.unwrap(),
        SecretCheck::Missing
    );
}

async fn case_expired_secrets_are_missing_and_restart_their_count(s: Arc<dyn Tokens>) {
    let at = now();
    let purpose = "email_code:register";
    s.put_secret(secret("c@example.com", "333333", at + TimeDelta::minutes(10), 5), at).await.unwrap();
    let late = at + TimeDelta::minutes(11);
    assert_eq!(
        s.take_secret(purpose, "c@example.com", &TokenHash::of("333333"), OnMismatch::CountAttempt, late)
            .await
            .unwrap(),
        SecretCheck::Missing
    );
    // An already expired secret that is replaced starts over at zero failures.
    s.put_secret(secret("d@example.com", "444444", at - TimeDelta::seconds(1), 2), at).await.unwrap();
    s.put_secret(secret("d@example.com", "555555", at + TimeDelta::minutes(10), 2), at).await.unwrap();
    assert_eq!(
        s.take_secret(purpose, "d@example.com", &TokenHash::of("000000"), OnMismatch::CountAttempt, at).await.unwrap(),
        SecretCheck::Invalid { attempts_left: 1 }
    );
}

async fn case_purge_deletes_dead_sessions_with_their_tokens_and_expired_secrets(s: Arc<dyn Tokens>) {
    let at = now();
    let live = new_session(Uuid::now_v7(), "p-live", at);
    let revoked = new_session(Uuid::now_v7(), "p-revoked", at);
    let mut expired = new_session(Uuid::now_v7(), "p-expired", at - TimeDelta::days(31));
    expired.session.expires_at = at - TimeDelta::days(1);
    for x in [&live, &revoked, &expired] {
        s.create_session(x.clone()).await.unwrap();
    }
    s.revoke_session(revoked.session.id, at).await.unwrap();
    s.put_secret(secret("old@example.com", "1", at - TimeDelta::seconds(1), 5), at).await.unwrap();
    s.put_secret(secret("new@example.com", "2", at + TimeDelta::minutes(10), 5), at).await.unwrap();
    assert_eq!(s.purge_expired_sessions(at).await.unwrap(), 2, "the revoked and the expired session");
    assert_eq!(s.purge_expired_secrets(at).await.unwrap(), 1, "the expired secret");
    assert!(s.session(revoked.session.id).await.unwrap().is_none());
    assert!(s.session(expired.session.id).await.unwrap().is_none());
    assert!(s.session(live.session.id).await.unwrap().is_some());
    assert!(matches!(
        s.rotate_refresh_token(rotation("p-live", "p-live-2", at)).await.unwrap(),
        RotationOutcome::Rotated(_)
    ));
    assert_eq!(
        s.take_secret("email_code:register", "new@example.com", &TokenHash::of("2"), OnMismatch::CountAttempt, at)
            .await
            .unwrap(),
        SecretCheck::Valid
    );
    assert_eq!(s.purge_expired_sessions(at).await.unwrap(), 0, "nothing left to purge");
    assert_eq!(s.purge_expired_secrets(at).await.unwrap(), 0, "nothing left to purge");
}

/// A user with an active TOTP factor confirmed at step 100, and its recovery codes `a`, `b`.
async fn user_with_factor(s: &Arc<dyn Store>, name: &str) -> Uuid {
    // One instant for the whole setup: two readings of the clock may straddle a second, and an
    // enrollment confirmed with `started_after` a second after its `created_at` is refused.
    let t = now();
    let user = s.create_user(new_user(Some(name), None)).await.unwrap();
    let factor = TotpFactor {
        user_id: user.id,
        sealed_secret: vec![1, 2, 3],
        created_at: t,
        confirmed_at: None,
        last_used_step: None,
        recovery_codes_left: 0,
    };
    assert!(s.put_pending_totp(factor.clone()).await.unwrap());
    assert!(!s.use_factor(user.id, FactorUse::TotpStep(100)).await.unwrap(), "a pending factor cannot log in");
    let confirm = |started_after| FactorUse::Confirm {
        step: 100,
        recovery_codes: vec![TokenHash::of("a"), TokenHash::of("b")],
        started_after,
        at: t,
        sealed_secret: vec![1, 2, 3],
    };
    assert!(!s.use_factor(user.id, confirm(t + TimeDelta::seconds(1))).await.unwrap(), "expired enrollment");
    assert!(s.use_factor(user.id, confirm(t)).await.unwrap());
    assert!(!s.put_pending_totp(factor).await.unwrap(), "an active factor is not replaced");
    let stored = s.totp_factor(user.id).await.unwrap().unwrap();
    assert_eq!((stored.confirmed_at, stored.last_used_step, stored.recovery_codes_left), (Some(t), Some(100), 2));
    assert_eq!(stored.sealed_secret, vec![1, 2, 3]);
    user.id
}

async fn case_a_totp_step_is_accepted_once_and_never_an_older_one(s: Arc<dyn Store>) {
    let id = user_with_factor(&s, "tess").await;
    assert!(!s.use_factor(id, FactorUse::TotpStep(100)).await.unwrap(), "the confirming step again");
    assert!(s.use_factor(id, FactorUse::TotpStep(101)).await.unwrap());
    assert!(!s.use_factor(id, FactorUse::TotpStep(101)).await.unwrap(), "replay");
    assert!(!s.use_factor(id, FactorUse::TotpStep(100)).await.unwrap(), "an older step");
    assert!(!s.use_factor(id, FactorUse::Wrong).await.unwrap());
    assert!(s.use_factor(id, FactorUse::RecoveryCode(TokenHash::of("a"))).await.unwrap());
    assert!(!s.use_factor(id, FactorUse::RecoveryCode(TokenHash::of("a"))).await.unwrap(), "spent");
    assert!(!s.use_factor(id, FactorUse::RecoveryCode(TokenHash::of("zz"))).await.unwrap(), "unknown");
    assert_eq!(s.totp_factor(id).await.unwrap().unwrap().recovery_codes_left, 1);
    assert!(s.replace_recovery_codes(id, vec![TokenHash::of("c")]).await.unwrap());
    assert!(!s.use_factor(id, FactorUse::RecoveryCode(TokenHash::of("b"))).await.unwrap(), "replaced");
    assert!(s.use_factor(id, FactorUse::RecoveryCode(TokenHash::of("c"))).await.unwrap());
    assert!(s.reseal_totp(id, &[1, 2, 3], vec![4, 5]).await.unwrap());
    assert!(!s.reseal_totp(id, &[1, 2, 3], vec![6]).await.unwrap(), "compare-and-set on the old value");
    assert_eq!(s.totp_factor(id).await.unwrap().unwrap().sealed_secret, vec![4, 5]);
}

async fn case_concurrent_uses_of_one_step_or_recovery_code_succeed_once(s: Arc<dyn Store>) {
    let id = user_with_factor(&s, "conc").await;
    for factor_use in [FactorUse::TotpStep(105), FactorUse::RecoveryCode(TokenHash::of("b"))] {
        let tries: Vec<_> = (0..8)
            .map(|_| {
                let (s, factor_use) = (s.clone(), factor_use.clone());
                tokio::spawn(async move { s.use_factor(id, factor_use).await.unwrap() })
            })
            .collect();
        let mut accepted = 0;
        for task in tries {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 1, "{factor_use:?}");
    }
}

fn challenge(user_id: Uuid, token: &str, purpose: ChallengePurpose, ttl: i64) -> MfaChallenge {
    MfaChallenge {
        token_hash: TokenHash::of(token),
        user_id,
        purpose,
        password_fingerprint: TokenHash::of("phc"),
        verified_at: now(),
        expires_at: now() + TimeDelta::seconds(ttl),
        attempts: 0,
    }
}

async fn case_a_challenge_counts_wrong_codes_and_a_dead_one_spends_nothing(s: Arc<dyn Store>) {
    let id = user_with_factor(&s, "chal").await;
    let login = ChallengePurpose::Login;
    s.create_challenge(challenge(id, "t1", login, 300)).await.unwrap();
    let t1 = TokenHash::of("t1");
    assert_eq!(s.challenge(&t1, login, now()).await.unwrap().unwrap().user_id, id);
    assert!(s.challenge(&t1, ChallengePurpose::Enroll, now()).await.unwrap().is_none(), "another purpose");
    for left in (0..5).rev() {
        let outcome = s.redeem_challenge(&t1, login, FactorUse::Wrong, now()).await.unwrap();
        assert_eq!(outcome, ChallengeOutcome::Rejected { attempts_left: left });
    }
    let code = FactorUse::RecoveryCode(TokenHash::of("a"));
    assert_eq!(s.redeem_challenge(&t1, login, code.clone(), now()).await.unwrap(), ChallengeOutcome::Dead);
    assert!(s.challenge(&t1, login, now()).await.unwrap().is_none());
    // The dead challenge did not spend the code: a live one takes it, once.
    s.create_challenge(challenge(id, "t2", login, 300)).await.unwrap();
    let t2 = TokenHash::of("t2");
    assert_eq!(
        s.redeem_challenge(&t2, login, FactorUse::TotpStep(100), now()).await.unwrap(),
        ChallengeOutcome::Rejected { attempts_left: 4 },
        "a replayed step is a wrong code"
    );
    match s.redeem_challenge(&t2, login, code.clone(), now()).await.unwrap() {
        ChallengeOutcome::Redeemed(c) => assert_eq!((c.user_id, c.attempts), (id, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.redeem_challenge(&t2, login, FactorUse::TotpStep(110), now()).await.unwrap(), ChallengeOutcome::Dead);
    assert!(!s.use_factor(id, code).await.unwrap(), "spent by the redemption");
    s.create_challenge(challenge(id, "t3", login, 300)).await.unwrap();
    let later = now() + TimeDelta::seconds(300);
    let t3 = TokenHash::of("t3");
    assert_eq!(s.redeem_challenge(&t3, login, FactorUse::TotpStep(111), later).await.unwrap(), ChallengeOutcome::Dead);
    assert!(s.use_factor(id, FactorUse::TotpStep(111)).await.unwrap(), "an expired challenge spent nothing");
    assert_eq!(s.purge_expired_mfa(later, now()).await.unwrap(), 2, "the dead t1 and the expired t3");
}

async fn case_removing_the_factor_or_the_user_removes_codes_and_challenges(s: Arc<dyn Store>) {
    let id = user_with_factor(&s, "gone").await;
    s.create_challenge(challenge(id, "g1", ChallengePurpose::Login, 300)).await.unwrap();
    assert!(s.delete_totp(id).await.unwrap());
    assert!(!s.delete_totp(id).await.unwrap());
    assert!(s.totp_factor(id).await.unwrap().is_none());
    assert!(s.challenge(&TokenHash::of("g1"), ChallengePurpose::Login, now()).await.unwrap().is_none());
    assert!(!s.use_factor(id, FactorUse::RecoveryCode(TokenHash::of("a"))).await.unwrap());
    let id = user_with_factor(&s, "gone2").await;
    s.create_challenge(challenge(id, "g2", ChallengePurpose::Login, 300)).await.unwrap();
    assert!(s.delete_user(id, false).await.unwrap());
    assert!(s.totp_factor(id).await.unwrap().is_none());
    assert!(s.challenge(&TokenHash::of("g2"), ChallengePurpose::Login, now()).await.unwrap().is_none());
    // An unconfirmed enrollment older than the bound is purged.
    let user = s.create_user(new_user(Some("pend"), None)).await.unwrap();
    let pending = TotpFactor {
        user_id: user.id,
        sealed_secret: vec![9],
        created_at: now(),
        confirmed_at: None,
        last_used_step: None,
        recovery_codes_left: 0,
    };
    assert!(s.put_pending_totp(pending).await.unwrap());
    assert_eq!(s.purge_expired_mfa(now(), now() + TimeDelta::seconds(1)).await.unwrap(), 1);
    assert!(s.totp_factor(user.id).await.unwrap().is_none());
}

macro_rules! conformance {
    // A token-only backend (Redis): the session, refresh-token and secret cases.
    (tokens_only $backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            conformance!(@token_cases $make);
        }
    };
    // A full backend: the user cases, purge, and the token cases.
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            conformance!(@cases Store, $make;
                case_users_are_found_by_id_username_and_email_case_insensitively,
                case_usernames_and_emails_are_unique_case_insensitively,
                case_concurrent_creation_of_one_username_succeeds_exactly_once,
                case_update_user_writes_only_the_given_fields,
                case_update_user_preconditions_are_compare_and_set,
                case_identifiers_are_compared_by_their_unicode_key,
                case_list_users_pages_by_id_and_filters_by_prefix_status_and_role,
                case_update_user_changes_identifiers_and_refuses_taken_ones,
                case_the_last_active_admin_cannot_be_demoted_disabled_or_deleted,
                case_concurrent_demotions_of_the_two_last_admins_leave_one,
                case_deleting_a_user_frees_the_username_and_email,
                case_audit_events_are_paged_newest_first_filtered_purged_and_forgotten,
                case_a_totp_step_is_accepted_once_and_never_an_older_one,
                case_concurrent_uses_of_one_step_or_recovery_code_succeed_once,
                case_a_challenge_counts_wrong_codes_and_a_dead_one_spends_nothing,
                case_removing_the_factor_or_the_user_removes_codes_and_challenges,
            );
            conformance!(@cases Tokens, $make;
                case_purge_deletes_dead_sessions_with_their_tokens_and_expired_secrets,
            );
            conformance!(@token_cases $make);
        }
    };
    (@token_cases $make:expr) => {
        conformance!(@cases Tokens, $make;
            case_sessions_are_created_listed_and_revoked,
            case_deleting_a_users_sessions_removes_them_with_their_tokens,
            case_a_session_keeps_how_it_was_authenticated,
            case_revoking_all_of_a_users_sessions_can_keep_one,
            case_rotation_spends_the_token_and_makes_the_successor_current,
            case_with_rotation_off_the_token_stays_current_and_the_session_is_touched,
            case_with_rotation_off_a_token_spent_while_it_was_on_is_reuse,
            case_a_spent_token_within_the_grace_window_returns_grace,
            case_a_spent_token_after_the_grace_window_revokes_the_session,
            case_a_spent_token_whose_successor_was_spent_is_reuse_even_within_grace,
            case_expired_idle_or_revoked_sessions_do_not_rotate,
            case_concurrent_rotations_of_one_token_rotate_exactly_once,
            case_a_secret_is_taken_once,
            case_wrong_attempts_are_capped,
            case_spend_on_mismatch_kills_the_secret_at_the_first_wrong_answer,
            case_expired_secrets_are_missing_and_restart_their_count,
        );
    };
    (@cases $kind:ident, $make:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((store, _guard)) = $make.await else {
                    eprintln!("skipped: the backend's AUTH_TEST_* URL is not set (scripts/test.sh sets it)");
                    return;
                };
                super::$case(store as Arc<dyn $kind>).await;
            }
        )*
    };
}

conformance!(memory, async { Some((Arc::new(auth_storage::MemoryStore::new()), ())) });

#[cfg(feature = "sqlite")]
conformance!(sqlite, async {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let store = auth_storage::SqliteStore::connect(&url).await.unwrap();
    Some((Arc::new(store), dir))
});

#[cfg(feature = "postgres")]
conformance!(postgres, async {
    let url = fresh_postgres_database().await?;
    let store = auth_storage::PostgresStore::connect(&url).await.unwrap();
    Some((Arc::new(store), ()))
});

/// A Redis store under a fresh key prefix on the test server.
#[cfg(feature = "redis")]
async fn fresh_redis_store() -> Option<auth_storage::RedisStore> {
    let url = service_url("AUTH_TEST_REDIS_URL")?;
    let mut options = auth_storage::RedisOptions::default();
    options.prefix = format!("test:{}:", Uuid::new_v4().simple());
    Some(auth_storage::RedisStore::connect_with(&url, options).await.expect("connect to AUTH_TEST_REDIS_URL"))
}

#[cfg(feature = "redis")]
conformance!(tokens_only redis, async {
    let store = fresh_redis_store().await?;
    Some((Arc::new(store), ()))
});

/// A backend's sessions behind a [`CachedSessionStore`](auth_storage::CachedSessionStore)
/// following its revocation feed, its secrets as they are: the wrapper must keep every session
/// contract of the store it wraps.
struct Cached<T: Tokens> {
    sessions: auth_storage::CachedSessionStore<T>,
    secrets: Arc<T>,
}

impl<T: Tokens> Cached<T> {
    /// The wrapper once it follows its feed, so that the cases' checks are answered from the
    /// cache where they can be.
    async fn new(store: Arc<T>, feed: impl auth_storage::cache::RevocationFeed) -> Arc<Self> {
        let sessions = auth_storage::CachedSessionStore::new(store.clone(), feed);
        for _ in 0..600 {
            if sessions.is_following() {
                return Arc::new(Self { sessions, secrets: store });
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the session cache never confirmed its feed");
    }
}

#[async_trait::async_trait]
impl<T: Tokens> SessionStore for Cached<T> {
    async fn create_session(&self, session: auth_core::NewSession) -> Result<(), StoreError> {
        self.sessions.create_session(session).await
    }
    async fn session(&self, id: Uuid) -> Result<Option<auth_core::Session>, StoreError> {
        self.sessions.session(id).await
    }
    async fn session_is_live(&self, id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.sessions.session_is_live(id, user_id, now).await
    }
    async fn rotate_refresh_token(&self, rotation: RotationRequest) -> Result<RotationOutcome, StoreError> {
        self.sessions.rotate_refresh_token(rotation).await
    }
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.sessions.revoke_session(id, at).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.sessions.revoke_user_sessions(user_id, except, at).await
    }
    async fn delete_user_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.sessions.delete_user_sessions(user_id, at).await
    }
    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<auth_core::Session>, StoreError> {
        self.sessions.user_sessions(user_id, now).await
    }
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.sessions.purge_expired_sessions(now).await
    }
}

#[async_trait::async_trait]
impl<T: Tokens> SecretStore for Cached<T> {
    async fn put_secret(&self, secret: NewSecret, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.secrets.put_secret(secret, now).await
    }
    async fn take_secret(
        &self,
        purpose: &str,
        key: &str,
        candidate: &TokenHash,
        on_mismatch: OnMismatch,
        now: DateTime<Utc>,
    ) -> Result<SecretCheck, StoreError> {
        self.secrets.take_secret(purpose, key, candidate, on_mismatch, now).await
    }
    async fn purge_expired_secrets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.secrets.purge_expired_secrets(now).await
    }
}

conformance!(tokens_only cached_memory, async {
    Some((Cached::new(Arc::new(auth_storage::MemoryStore::new()), auth_storage::SingleProcess).await, ()))
});

#[cfg(feature = "sqlite")]
conformance!(tokens_only cached_sqlite, async {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let store = Arc::new(auth_storage::SqliteStore::connect(&url).await.unwrap());
    let feed = store.changes();
    Some((Cached::new(store, feed).await, dir))
});

#[cfg(feature = "postgres")]
conformance!(tokens_only cached_postgres, async {
    let url = fresh_postgres_database().await?;
    let store = Arc::new(auth_storage::PostgresStore::connect(&url).await.unwrap());
    let feed = store.revocations();
    Some((Cached::new(store, feed).await, ()))
});

#[cfg(feature = "redis")]
conformance!(tokens_only cached_redis, async {
    let store = Arc::new(fresh_redis_store().await?);
    let feed = store.revocations();
    Some((Cached::new(store, feed).await, ()))
});

/// The rate-limiter suite, run against the memory and Redis limiters.
mod rate_limiter {
    use std::sync::Arc;
    use std::time::Duration;

    use auth_core::{RateLimitDecision, RateLimiter};

    async fn allows_up_to_the_limit_then_says_when_to_retry(l: Arc<dyn RateLimiter>) {
        let window = Duration::from_secs(60);
        for remaining in [2, 1, 0] {
            assert_eq!(l.check("ip:1", 3, window).await.unwrap(), RateLimitDecision::Allowed { remaining });
        }
        let RateLimitDecision::Limited { retry_after_seconds } = l.check("ip:1", 3, window).await.unwrap() else {
            panic!("expected Limited")
        };
        assert!((59..=60).contains(&retry_after_seconds), "{retry_after_seconds}");
        // Another key is unaffected; a reset clears the key.
        assert!(matches!(l.check("ip:2", 3, window).await.unwrap(), RateLimitDecision::Allowed { .. }));
        l.reset("ip:1").await.unwrap();
        assert_eq!(l.check("ip:1", 3, window).await.unwrap(), RateLimitDecision::Allowed { remaining: 2 });
    }

    async fn peek_counts_nothing_and_a_refused_hit_is_not_counted(l: Arc<dyn RateLimiter>) {
        let window = Duration::from_secs(60);
        assert_eq!(l.peek("acct", 2, window).await.unwrap(), RateLimitDecision::Allowed { remaining: 2 });
        l.check("acct", 2, window).await.unwrap();
        assert_eq!(l.peek("acct", 2, window).await.unwrap(), RateLimitDecision::Allowed { remaining: 1 });
        l.check("acct", 2, window).await.unwrap();
        assert!(matches!(l.peek("acct", 2, window).await.unwrap(), RateLimitDecision::Limited { .. }));
        assert!(matches!(l.check("acct", 2, window).await.unwrap(), RateLimitDecision::Limited { .. }));
        // With a higher limit the refused hits were not counted: exactly two are in the log.
        assert_eq!(l.peek("acct", 3, window).await.unwrap(), RateLimitDecision::Allowed { remaining: 1 });
    }

    async fn the_window_slides_instead_of_resetting_at_a_boundary(l: Arc<dyn RateLimiter>) {
        // Margins of 100 ms and 400 ms against scheduling noise.
        let window = Duration::from_millis(1000);
        assert!(matches!(l.check("s", 2, window).await.unwrap(), RateLimitDecision::Allowed { .. }));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(matches!(l.check("s", 2, window).await.unwrap(), RateLimitDecision::Allowed { .. }));
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The first hit left the window; the second has not: one more is allowed, not two.
        assert!(matches!(l.check("s", 2, window).await.unwrap(), RateLimitDecision::Allowed { remaining: 0 }));
        assert!(matches!(l.check("s", 2, window).await.unwrap(), RateLimitDecision::Limited { .. }));
    }

    async fn concurrent_hits_never_exceed_the_limit(l: Arc<dyn RateLimiter>) {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.check("burst", 7, Duration::from_secs(60)).await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), RateLimitDecision::Allowed { .. }) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 7);
    }

    macro_rules! limiter_suite {
        ($backend:ident, $make:expr) => {
            mod $backend {
                use super::*;
                limiter_suite!(@cases $make;
                    allows_up_to_the_limit_then_says_when_to_retry,
                    peek_counts_nothing_and_a_refused_hit_is_not_counted,
                    the_window_slides_instead_of_resetting_at_a_boundary,
                    concurrent_hits_never_exceed_the_limit,
                );
            }
        };
        (@cases $make:expr; $($case:ident,)*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(limiter) = $make.await else {
                        eprintln!("skipped: AUTH_TEST_REDIS_URL is not set (scripts/test.sh sets it)");
                        return;
                    };
                    super::$case(limiter).await;
                }
            )*
        };
    }

    limiter_suite!(memory, async { Some(Arc::new(auth_storage::MemoryStore::new()) as Arc<dyn RateLimiter>) });

    #[cfg(feature = "redis")]
    limiter_suite!(redis, async { crate::fresh_redis_store().await.map(|s| Arc::new(s) as Arc<dyn RateLimiter>) });
}
