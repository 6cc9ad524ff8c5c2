//! The seam between the core's flows and a wire contract: the [`Operation`]s of the API, the
//! [`Route`] table that maps them to method and path, the typed [`Input`] of each and its
//! [`Reply`], and the [`Dialect`] trait that parses requests and renders replies and errors.
//! [`Canonical`] is the API of `docs/API.md`.

use std::fmt;

use auth_core::{
    AccountExport, AdminCreateUserRequest, AdminUpdateUserRequest, AuditEvent, CaptchaChallenge, CaptchaStatus,
    ChangePasswordRequest, DeleteAccountRequest, EmailChangeConfirmRequest, EmailChangeRequest, EmailCodeRequest,
    ForgotPasswordRequest, IssuedTokens, ListAuditRequest, ListUsersRequest, LoginOutcome, LoginRequest, LogoutRequest,
    MfaConfirmRequest, MfaLoginRequest, MfaStatus, Page, Preferences, PreferencesUpdate, RefreshRequest,
    RegisterRequest, ResetPasswordRequest, Session, TotpConfirmRequest, TotpConfirmation, TotpEnrollRequest,
    TotpEnrollment, User, VerifyEmailRequest,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::body::{json_body, optional_json_body, query_params};
use crate::error::ErrorBody;
use crate::wire::{
    AccountExportResponse, AuditPageResponse, CaptchaResponse, CaptchaStatusResponse, EnrollmentRequiredResponse,
    MfaStatusResponse, PreferencesResponse, RecoveryCodesResponse, RevokedResponse, SecondFactorResponse, SentResponse,
    SessionInfo, SessionsResponse, TokenResponse, TotpEnrollmentResponse, UserPageResponse,
};

/// A response as bytes, for any framework to send.
pub type HttpResponse = http::Response<Vec<u8>>;

/// One operation of the API, whatever the dialect calls its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Captcha and protection settings.
    CaptchaStatus,
    /// A new image captcha.
    Captcha,
    /// Registration.
    Register,
    /// Password login.
    Login,
    /// Refresh-token rotation.
    Refresh,
    /// Logout (this session, or all).
    Logout,
    /// The caller's profile.
    Me,
    /// Change UI preferences.
    UpdatePreferences,
    /// Change password.
    ChangePassword,
    /// The caller's sessions.
    Sessions,
    /// Revoke one of the caller's sessions.
    RevokeSession,
    /// Mail a 6-digit code.
    EmailCode,
    /// Verify the caller's email address with a code.
    VerifyEmail,
    /// Mail a password-reset link.
    ForgotPassword,
    /// Reset the password with a link token or a code.
    ResetPassword,
    /// Start changing the caller's email address (code to the new one).
    ChangeEmail,
    /// Confirm the new email address with its code.
    ConfirmEmailChange,
    /// Delete the caller's account.
    DeleteAccount,
    /// The caller's data as a download.
    ExportAccount,
    /// The caller's own audit events.
    MyAudit,
    /// Admin: a page of users.
    AdminListUsers,
    /// Admin: one user.
    AdminGetUser,
    /// Admin: create a user.
    AdminCreateUser,
    /// Admin: change a user.
    AdminUpdateUser,
    /// Admin: delete a user.
    AdminDeleteUser,
    /// Admin: a user's live sessions.
    AdminUserSessions,
    /// Admin: end every session of a user.
    AdminRevokeUserSessions,
    /// Admin: end one session of a user.
    AdminRevokeUserSession,
    /// Admin: mail a user a password-reset link.
    AdminSendPasswordReset,
    /// Admin: a page of the audit log.
    AdminAudit,
    /// The second step of a login: the challenge and a second factor.
    LoginMfa,
    /// The caller's second-factor state.
    MfaStatus,
    /// Start a TOTP enrollment (access token and password, or an enrollment token).
    MfaTotpEnroll,
    /// Confirm it with a first code; answers recovery codes.
    MfaTotpConfirm,
    /// New recovery codes (password and a code).
    MfaRecoveryCodes,
    /// Disable the TOTP factor (password and a code).
    MfaTotpDisable,
    /// Admin: remove a user's second factor.
    AdminResetMfa,
}

impl Operation {
    /// Whether the operation needs an authenticated caller: adapters put their access-token
    /// check (e.g. `auth_axum::RequireAuth`) in front of these routes, and
    /// [`execute`](crate::execute) refuses them without claims.
    #[must_use]
    pub fn requires_auth(self) -> bool {
        matches!(
            self,
            Self::Logout
                | Self::Me
                | Self::UpdatePreferences
                | Self::ChangePassword
                | Self::Sessions
                | Self::RevokeSession
                | Self::VerifyEmail
                | Self::ChangeEmail
                | Self::ConfirmEmailChange
                | Self::DeleteAccount
                | Self::ExportAccount
                | Self::MyAudit
                | Self::MfaStatus
                | Self::MfaRecoveryCodes
                | Self::MfaTotpDisable
        ) || self.required_role().is_some()
    }

    /// Whether the operation takes an access token when one is sent but also works without
    /// (enrolling a second factor with the enrollment token of a login): adapters authenticate
    /// a present token (`auth_axum::OptionalAuth`) and pass its claims.
    #[must_use]
    pub fn accepts_auth(self) -> bool {
        matches!(self, Self::MfaTotpEnroll | Self::MfaTotpConfirm)
    }

    /// The role the caller's access token must carry (`admin` for the admin API), checked by
    /// the adapter's access-token layer and again by the core.
    #[must_use]
    pub fn required_role(self) -> Option<&'static str> {
        matches!(
            self,
            Self::AdminListUsers
                | Self::AdminGetUser
                | Self::AdminCreateUser
                | Self::AdminUpdateUser
                | Self::AdminDeleteUser
                | Self::AdminUserSessions
                | Self::AdminRevokeUserSessions
                | Self::AdminRevokeUserSession
                | Self::AdminSendPasswordReset
                | Self::AdminAudit
                | Self::AdminResetMfa
        )
        .then_some("admin")
    }

    /// Whether the core applies a rate rule of its own (register, login, email code, forgot
    /// password). The others share the per-IP "every other route" rule
    /// ([`Auth::limit_other_request`](auth_core::Auth::limit_other_request)), which adapters
    /// apply before authentication.
    #[must_use]
    pub fn has_own_rate_rule(self) -> bool {
        matches!(self, Self::Register | Self::Login | Self::EmailCode | Self::ForgotPassword)
    }
}

/// A route of a dialect, relative to where the host mounts the router. Path parameters are
/// written `{name}` (the syntax of axum 0.8 and actix-web).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path, e.g. `/sessions/{id}`.
    pub path: &'static str,
    /// What the route does.
    pub operation: Operation,
}

impl Route {
    /// A route.
    #[must_use]
    pub const fn new(method: Method, path: &'static str, operation: Operation) -> Self {
        Self { method, path, operation }
    }
}

/// The canonical API's routes (`docs/API.md`).
pub static CANONICAL_ROUTES: &[Route] = &[
    Route::new(Method::GET, "/captcha/status", Operation::CaptchaStatus),
    Route::new(Method::GET, "/captcha", Operation::Captcha),
    Route::new(Method::POST, "/register", Operation::Register),
    Route::new(Method::POST, "/login", Operation::Login),
    Route::new(Method::POST, "/refresh", Operation::Refresh),
    Route::new(Method::POST, "/logout", Operation::Logout),
    Route::new(Method::GET, "/me", Operation::Me),
    Route::new(Method::PUT, "/me/preferences", Operation::UpdatePreferences),
    Route::new(Method::POST, "/password/change", Operation::ChangePassword),
    Route::new(Method::GET, "/sessions", Operation::Sessions),
    Route::new(Method::DELETE, "/sessions/{id}", Operation::RevokeSession),
    Route::new(Method::POST, "/email/code", Operation::EmailCode),
    Route::new(Method::POST, "/email/verify", Operation::VerifyEmail),
    Route::new(Method::POST, "/password/forgot", Operation::ForgotPassword),
    Route::new(Method::POST, "/password/reset", Operation::ResetPassword),
    Route::new(Method::POST, "/me/email", Operation::ChangeEmail),
    Route::new(Method::POST, "/me/email/confirm", Operation::ConfirmEmailChange),
    Route::new(Method::DELETE, "/me", Operation::DeleteAccount),
    Route::new(Method::GET, "/me/export", Operation::ExportAccount),
    Route::new(Method::GET, "/me/audit", Operation::MyAudit),
    Route::new(Method::GET, "/admin/users", Operation::AdminListUsers),
    Route::new(Method::POST, "/admin/users", Operation::AdminCreateUser),
    Route::new(Method::GET, "/admin/users/{id}", Operation::AdminGetUser),
    Route::new(Method::PATCH, "/admin/users/{id}", Operation::AdminUpdateUser),
    Route::new(Method::DELETE, "/admin/users/{id}", Operation::AdminDeleteUser),
    Route::new(Method::GET, "/admin/users/{id}/sessions", Operation::AdminUserSessions),
    Route::new(Method::DELETE, "/admin/users/{id}/sessions", Operation::AdminRevokeUserSessions),
    Route::new(Method::DELETE, "/admin/users/{id}/sessions/{sid}", Operation::AdminRevokeUserSession),
    Route::new(Method::POST, "/admin/users/{id}/password-reset", Operation::AdminSendPasswordReset),
    Route::new(Method::GET, "/admin/audit", Operation::AdminAudit),
    Route::new(Method::POST, "/login/mfa", Operation::LoginMfa),
    Route::new(Method::GET, "/mfa", Operation::MfaStatus),
    Route::new(Method::POST, "/mfa/totp/enroll", Operation::MfaTotpEnroll),
    Route::new(Method::POST, "/mfa/totp/confirm", Operation::MfaTotpConfirm),
    Route::new(Method::POST, "/mfa/recovery-codes", Operation::MfaRecoveryCodes),
    Route::new(Method::DELETE, "/mfa/totp", Operation::MfaTotpDisable),
    Route::new(Method::DELETE, "/admin/users/{id}/mfa", Operation::AdminResetMfa),
];

/// What a [`Dialect`] parses from a request: its headers, its body (empty for none), the values
/// of its path parameters and its query string.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The query string, without the `?` (`None`: none).
    pub query: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
    /// The path parameters, `(name, value)`, percent-decoded.
    pub path_params: &'a [(String, String)],
}

impl RequestParts<'_> {
    /// The value of path parameter `name`.
    #[must_use]
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The typed input of an [`Operation`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// [`Operation::CaptchaStatus`].
    CaptchaStatus,
    /// [`Operation::Captcha`].
    Captcha,
    /// [`Operation::Register`].
    Register(RegisterRequest),
    /// [`Operation::Login`].
    Login(LoginRequest),
    /// [`Operation::Refresh`].
    Refresh(RefreshRequest),
    /// [`Operation::Logout`].
    Logout(LogoutRequest),
    /// [`Operation::Me`].
    Me,
    /// [`Operation::UpdatePreferences`].
    UpdatePreferences(PreferencesUpdate),
    /// [`Operation::ChangePassword`].
    ChangePassword(ChangePasswordRequest),
    /// [`Operation::Sessions`].
    Sessions,
    /// [`Operation::RevokeSession`]: the session id.
    RevokeSession(Uuid),
    /// [`Operation::EmailCode`].
    EmailCode(EmailCodeRequest),
    /// [`Operation::VerifyEmail`].
    VerifyEmail(VerifyEmailRequest),
    /// [`Operation::ForgotPassword`].
    ForgotPassword(ForgotPasswordRequest),
    /// [`Operation::ResetPassword`].
    ResetPassword(ResetPasswordRequest),
    /// [`Operation::ChangeEmail`].
    ChangeEmail(EmailChangeRequest),
    /// [`Operation::ConfirmEmailChange`].
    ConfirmEmailChange(EmailChangeConfirmRequest),
    /// [`Operation::DeleteAccount`].
    DeleteAccount(DeleteAccountRequest),
    /// [`Operation::ExportAccount`].
    ExportAccount,
    /// [`Operation::MyAudit`].
    MyAudit(ListAuditRequest),
    /// [`Operation::AdminListUsers`].
    AdminListUsers(ListUsersRequest),
    /// [`Operation::AdminGetUser`]: the user id.
    AdminGetUser(Uuid),
    /// [`Operation::AdminCreateUser`].
    AdminCreateUser(AdminCreateUserRequest),
    /// [`Operation::AdminUpdateUser`]: the user id and the changes.
    AdminUpdateUser(Uuid, AdminUpdateUserRequest),
    /// [`Operation::AdminDeleteUser`]: the user id.
    AdminDeleteUser(Uuid),
    /// [`Operation::AdminUserSessions`]: the user id.
    AdminUserSessions(Uuid),
    /// [`Operation::AdminRevokeUserSessions`]: the user id.
    AdminRevokeUserSessions(Uuid),
    /// [`Operation::AdminRevokeUserSession`]: the user id and the session id.
    AdminRevokeUserSession(Uuid, Uuid),
    /// [`Operation::AdminSendPasswordReset`]: the user id.
    AdminSendPasswordReset(Uuid),
    /// [`Operation::AdminAudit`].
    AdminAudit(ListAuditRequest),
    /// [`Operation::LoginMfa`].
    LoginMfa(MfaLoginRequest),
    /// [`Operation::MfaStatus`].
    MfaStatus,
    /// [`Operation::MfaTotpEnroll`].
    MfaTotpEnroll(TotpEnrollRequest),
    /// [`Operation::MfaTotpConfirm`].
    MfaTotpConfirm(TotpConfirmRequest),
    /// [`Operation::MfaRecoveryCodes`].
    MfaRecoveryCodes(MfaConfirmRequest),
    /// [`Operation::MfaTotpDisable`].
    MfaTotpDisable(MfaConfirmRequest),
    /// [`Operation::AdminResetMfa`]: the user id.
    AdminResetMfa(Uuid),
}

impl Input {
    /// The operation this is the input of.
    #[must_use]
    pub fn operation(&self) -> Operation {
        match self {
            Self::CaptchaStatus => Operation::CaptchaStatus,
            Self::Captcha => Operation::Captcha,
            Self::Register(_) => Operation::Register,
            Self::Login(_) => Operation::Login,
            Self::Refresh(_) => Operation::Refresh,
            Self::Logout(_) => Operation::Logout,
            Self::Me => Operation::Me,
            Self::UpdatePreferences(_) => Operation::UpdatePreferences,
            Self::ChangePassword(_) => Operation::ChangePassword,
            Self::Sessions => Operation::Sessions,
            Self::RevokeSession(_) => Operation::RevokeSession,
            Self::EmailCode(_) => Operation::EmailCode,
            Self::VerifyEmail(_) => Operation::VerifyEmail,
            Self::ForgotPassword(_) => Operation::ForgotPassword,
            Self::ResetPassword(_) => Operation::ResetPassword,
            Self::ChangeEmail(_) => Operation::ChangeEmail,
            Self::ConfirmEmailChange(_) => Operation::ConfirmEmailChange,
            Self::DeleteAccount(_) => Operation::DeleteAccount,
            Self::ExportAccount => Operation::ExportAccount,
            Self::MyAudit(_) => Operation::MyAudit,
            Self::AdminListUsers(_) => Operation::AdminListUsers,
            Self::AdminGetUser(_) => Operation::AdminGetUser,
            Self::AdminCreateUser(_) => Operation::AdminCreateUser,
            Self::AdminUpdateUser(..) => Operation::AdminUpdateUser,
            Self::AdminDeleteUser(_) => Operation::AdminDeleteUser,
            Self::AdminUserSessions(_) => Operation::AdminUserSessions,
            Self::AdminRevokeUserSessions(_) => Operation::AdminRevokeUserSessions,
            Self::AdminRevokeUserSession(..) => Operation::AdminRevokeUserSession,
            Self::AdminSendPasswordReset(_) => Operation::AdminSendPasswordReset,
            Self::AdminAudit(_) => Operation::AdminAudit,
            Self::LoginMfa(_) => Operation::LoginMfa,
            Self::MfaStatus => Operation::MfaStatus,
            Self::MfaTotpEnroll(_) => Operation::MfaTotpEnroll,
            Self::MfaTotpConfirm(_) => Operation::MfaTotpConfirm,
            Self::MfaRecoveryCodes(_) => Operation::MfaRecoveryCodes,
            Self::MfaTotpDisable(_) => Operation::MfaTotpDisable,
            Self::AdminResetMfa(_) => Operation::AdminResetMfa,
        }
    }
}

/// The domain result of an operation, for a [`Dialect`] to render.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Reply {
    /// [`Operation::CaptchaStatus`].
    CaptchaStatus(CaptchaStatus),
    /// [`Operation::Captcha`]: `None` when no image captcha is in use.
    Captcha(Option<CaptchaChallenge>),
    /// [`Operation::Register`]: the new account's session.
    Registered(Box<IssuedTokens>),
    /// [`Operation::Login`].
    LoggedIn(LoginOutcome),
    /// [`Operation::Refresh`].
    Refreshed(Box<IssuedTokens>),
    /// [`Operation::Logout`].
    LoggedOut,
    /// [`Operation::Me`].
    Me(User),
    /// [`Operation::UpdatePreferences`]: the preferences after the update.
    Preferences(Preferences),
    /// [`Operation::ChangePassword`].
    PasswordChanged,
    /// [`Operation::Sessions`]: live sessions, newest first, and the caller's session id.
    Sessions {
        /// The sessions.
        sessions: Vec<Session>,
        /// The id of the session making the request.
        current: Uuid,
    },
    /// [`Operation::RevokeSession`].
    SessionRevoked,
    /// [`Operation::EmailCode`]: accepted (whether or not the address is known).
    CodeSent,
    /// [`Operation::VerifyEmail`]: the user, now verified.
    EmailVerified(User),
    /// [`Operation::ForgotPassword`]: accepted (whether or not the address is known).
    ResetLinkSent,
    /// [`Operation::ResetPassword`].
    PasswordReset,
    /// [`Operation::ChangeEmail`]: a code is on its way (or not, for a taken address).
    EmailChangeRequested,
    /// [`Operation::ConfirmEmailChange`]: the user with the new address.
    EmailChanged(User),
    /// [`Operation::DeleteAccount`], [`Operation::AdminDeleteUser`].
    AccountDeleted,
    /// [`Operation::ExportAccount`].
    Export(Box<AccountExport>),
    /// [`Operation::MyAudit`], [`Operation::AdminAudit`].
    AuditPage(Page<AuditEvent>),
    /// [`Operation::AdminListUsers`].
    UserPage(Page<User>),
    /// [`Operation::AdminGetUser`], [`Operation::AdminUpdateUser`].
    User(User),
    /// [`Operation::AdminCreateUser`].
    UserCreated(User),
    /// [`Operation::AdminUserSessions`]: the user's live sessions, newest first.
    UserSessions(Vec<Session>),
    /// [`Operation::AdminRevokeUserSessions`], [`Operation::AdminRevokeUserSession`]: how many
    /// sessions ended.
    SessionsRevoked(u64),
    /// [`Operation::AdminSendPasswordReset`].
    PasswordResetSent,
    /// [`Operation::MfaStatus`].
    MfaStatus(MfaStatus),
    /// [`Operation::MfaTotpEnroll`].
    TotpEnrollment(TotpEnrollment),
    /// [`Operation::MfaTotpConfirm`]: the recovery codes, and the tokens of a login that had to
    /// enroll.
    TotpConfirmed(TotpConfirmation),
    /// [`Operation::MfaRecoveryCodes`].
    RecoveryCodes(Vec<String>),
    /// [`Operation::MfaTotpDisable`], [`Operation::AdminResetMfa`].
    MfaDisabled,
}

/// A wire contract: the routes, how requests are parsed and how successes and errors are
/// rendered. The core's flows and rules are the same under every dialect; only the wire changes.
///
/// Implement it to serve clients written against another auth API; adapters
/// (`auth_axum::AuthRouter::dialect`) serve any dialect. Parse and render only: never call the
/// service from a dialect. `routes`, `parse` and `render` default to [`Canonical`]'s, so a
/// dialect writes only what differs; `name` and `render_error` are its own.
///
/// ```
/// use auth_http::{Dialect, ErrorBody, HttpResponse};
///
/// /// The canonical API, with errors as `{"success":false,"code":…,"message":…}`.
/// #[derive(Debug)]
/// struct Flat;
///
/// impl Dialect for Flat {
///     fn name(&self) -> &'static str { "flat" }
///     fn render_error(&self, e: &ErrorBody) -> HttpResponse {
///         let body = serde_json::json!({"success": false, "code": e.code, "message": e.message});
///         let mut response = auth_http::json_response(e.status, &body);
///         e.add_headers(response.headers_mut());
///         response
///     }
/// }
///
/// let response = Flat.render_error(&ErrorBody::route_not_found());
/// assert_eq!(response.status(), 404);
/// ```
pub trait Dialect: fmt::Debug + Send + Sync + 'static {
    /// A short name, e.g. `canonical`.
    fn name(&self) -> &'static str;

    /// The routes served, relative to the mount (default: [`CANONICAL_ROUTES`]).
    fn routes(&self) -> &[Route] {
        CANONICAL_ROUTES
    }

    /// The input of `operation` from `request` (default: [`Canonical`]'s parsing).
    ///
    /// # Errors
    /// The error to answer with: 400 `invalid_request`, 415, 404 for a bad path parameter.
    fn parse(&self, operation: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
        canonical_parse(operation, request)
    }

    /// The response of a success (default: [`Canonical`]'s bodies).
    fn render(&self, reply: Reply) -> HttpResponse {
        canonical_render(reply)
    }

    /// The response of an error, with [`ErrorBody::add_headers`]'s headers.
    fn render_error(&self, error: &ErrorBody) -> HttpResponse;

    /// Where servers mount the routes by default, e.g. `/api/auth` (the default).
    fn mount(&self) -> &'static str {
        "/api/auth"
    }

    /// The `Authorization` schemes whose token is taken as an access token, compared
    /// case-insensitively (default `Bearer` only). Adapters pass them to their access-token
    /// layer for the dialect's routes; hosts pass them to theirs for their own routes.
    fn auth_schemes(&self) -> &'static [&'static str] {
        &["Bearer"]
    }

    /// Whether this contract can carry tokens in `HttpOnly` cookies (`AuthConfig::browser`,
    /// `TokenTransport::Cookie` / `Both`): its token answers then leave out `refresh_token`
    /// (default false; [`Canonical`] can). Adapters refuse to build a router for a dialect that
    /// cannot while cookie transport is on.
    fn supports_cookie_transport(&self) -> bool {
        false
    }

    /// Whether registration needs a mailed code (see `AuthConfig::require_email_verification`)
    /// unless configured otherwise; `None`: the core's default (no).
    fn default_require_email_verification(&self) -> Option<bool> {
        None
    }

    /// The routes a captcha guards unless configured otherwise (`AuthConfig::captcha_actions`):
    /// a contract whose request for some route has no captcha field leaves it out; `None`:
    /// every route ([`CaptchaAction::ALL`](auth_core::CaptchaAction::ALL)).
    fn default_captcha_actions(&self) -> Option<&'static [auth_core::CaptchaAction]> {
        None
    }

    /// Whether passwords must mix upper- and lower-case letters, digits and symbols unless
    /// configured otherwise (`PasswordPolicy::require_*`); `None`: the core's default (no:
    /// length and a common-password check, as NIST SP 800-63B recommends).
    fn default_password_composition(&self) -> Option<bool> {
        None
    }

    /// The access-token lifetime this contract's clients expect, for servers to use when none is
    /// configured (an explicit setting always wins); `None`: the core's default (3600 s).
    fn default_access_token_ttl(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether this contract cannot work with refresh rotation: its clients never receive the
    /// successor, so their second refresh after the grace window would be reuse and end their
    /// session. Servers refuse to start with rotation on for such a dialect (default false).
    fn requires_refresh_rotation_off(&self) -> bool {
        false
    }

    /// Whether this contract's clients store the new refresh token a refresh hands out, for
    /// servers to use when refresh rotation is not configured (an explicit setting always wins);
    /// `None`: the core's default (rotation on, see `AuthConfig::refresh_rotation`).
    fn default_refresh_rotation(&self) -> Option<bool> {
        None
    }
}

/// The canonical API (`docs/API.md`): `snake_case` JSON bodies, errors as
/// `{"error":{"code","message","details"?}}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Canonical;

impl Dialect for Canonical {
    fn name(&self) -> &'static str {
        "canonical"
    }

    fn supports_cookie_transport(&self) -> bool {
        true
    }

    fn render_error(&self, error: &ErrorBody) -> HttpResponse {
        let mut body = Map::new();
        body.insert("code".into(), Value::from(error.code));
        body.insert("message".into(), Value::from(error.message.clone()));
        if let Some(details) = &error.details {
            body.insert("details".into(), details.clone());
        }
        let mut response = json_response(error.status, &json!({ "error": body }));
        error.add_headers(response.headers_mut());
        response
    }
}

/// [`Canonical`]'s parsing: the bodies of `docs/API.md` into the core's inputs.
fn canonical_parse(operation: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
    let (headers, body) = (request.headers, request.body);
    Ok(match operation {
        Operation::CaptchaStatus => Input::CaptchaStatus,
        Operation::Captcha => Input::Captcha,
        Operation::Register => Input::Register(json_body(headers, body)?),
        Operation::Login => Input::Login(json_body(headers, body)?),
        Operation::Refresh => Input::Refresh(json_body(headers, body)?),
        Operation::Logout => Input::Logout(optional_json_body(headers, body)?),
        Operation::Me => Input::Me,
        Operation::UpdatePreferences => Input::UpdatePreferences(json_body(headers, body)?),
        Operation::ChangePassword => Input::ChangePassword(json_body(headers, body)?),
        Operation::Sessions => Input::Sessions,
        Operation::RevokeSession => Input::RevokeSession(session_id(request)?),
        Operation::EmailCode => Input::EmailCode(json_body(headers, body)?),
        Operation::VerifyEmail => Input::VerifyEmail(json_body(headers, body)?),
        Operation::ForgotPassword => Input::ForgotPassword(json_body(headers, body)?),
        Operation::ResetPassword => Input::ResetPassword(json_body(headers, body)?),
        Operation::ChangeEmail => Input::ChangeEmail(json_body(headers, body)?),
        Operation::ConfirmEmailChange => Input::ConfirmEmailChange(json_body(headers, body)?),
        Operation::DeleteAccount => Input::DeleteAccount(json_body(headers, body)?),
        Operation::ExportAccount => Input::ExportAccount,
        Operation::MyAudit => Input::MyAudit(query_params(request.query)?),
        Operation::AdminListUsers => Input::AdminListUsers(query_params(request.query)?),
        Operation::AdminGetUser => Input::AdminGetUser(path_id(request, "id")?),
        Operation::AdminCreateUser => Input::AdminCreateUser(json_body(headers, body)?),
        Operation::AdminUpdateUser => Input::AdminUpdateUser(path_id(request, "id")?, json_body(headers, body)?),
        Operation::AdminDeleteUser => Input::AdminDeleteUser(path_id(request, "id")?),
        Operation::AdminUserSessions => Input::AdminUserSessions(path_id(request, "id")?),
        Operation::AdminRevokeUserSessions => Input::AdminRevokeUserSessions(path_id(request, "id")?),
        Operation::AdminRevokeUserSession => {
            Input::AdminRevokeUserSession(path_id(request, "id")?, path_id(request, "sid")?)
        }
        Operation::AdminSendPasswordReset => Input::AdminSendPasswordReset(path_id(request, "id")?),
        Operation::AdminAudit => Input::AdminAudit(query_params(request.query)?),
        Operation::LoginMfa => Input::LoginMfa(json_body(headers, body)?),
        Operation::MfaStatus => Input::MfaStatus,
        Operation::MfaTotpEnroll => Input::MfaTotpEnroll(optional_json_body(headers, body)?),
        Operation::MfaTotpConfirm => Input::MfaTotpConfirm(json_body(headers, body)?),
        Operation::MfaRecoveryCodes => Input::MfaRecoveryCodes(json_body(headers, body)?),
        Operation::MfaTotpDisable => Input::MfaTotpDisable(json_body(headers, body)?),
        Operation::AdminResetMfa => Input::AdminResetMfa(path_id(request, "id")?),
    })
}

/// [`Canonical`]'s success bodies.
fn canonical_render(reply: Reply) -> HttpResponse {
    match reply {
        Reply::CaptchaStatus(status) => json_response(StatusCode::OK, &CaptchaStatusResponse::from(status)),
        Reply::Captcha(challenge) => json_response(StatusCode::OK, &CaptchaResponse::from(challenge)),
        Reply::Registered(tokens) => json_response(StatusCode::CREATED, &TokenResponse::from(*tokens)),
        Reply::LoggedIn(LoginOutcome::Authenticated(tokens)) | Reply::Refreshed(tokens) => {
            json_response(StatusCode::OK, &TokenResponse::from(*tokens))
        }
        Reply::LoggedIn(LoginOutcome::SecondFactorRequired(challenge)) => {
            json_response(StatusCode::OK, &SecondFactorResponse::from(challenge))
        }
        Reply::LoggedIn(LoginOutcome::EnrollmentRequired(challenge)) => {
            json_response(StatusCode::OK, &EnrollmentRequiredResponse::from(challenge))
        }
        Reply::MfaStatus(status) => json_response(StatusCode::OK, &MfaStatusResponse::from(status)),
        Reply::TotpEnrollment(enrollment) => json_response(StatusCode::OK, &TotpEnrollmentResponse::from(enrollment)),
        Reply::TotpConfirmed(confirmation) => json_response(StatusCode::OK, &RecoveryCodesResponse::from(confirmation)),
        Reply::RecoveryCodes(recovery_codes) => {
            json_response(StatusCode::OK, &RecoveryCodesResponse { recovery_codes, tokens: None })
        }
        Reply::Me(user) | Reply::EmailVerified(user) => json_response(StatusCode::OK, &user),
        Reply::Preferences(preferences) => json_response(StatusCode::OK, &PreferencesResponse { preferences }),
        Reply::Sessions { sessions, current } => {
            let sessions = sessions.into_iter().map(|s| SessionInfo::new(s, current)).collect();
            json_response(StatusCode::OK, &SessionsResponse { sessions })
        }
        Reply::CodeSent | Reply::ResetLinkSent => json_response(StatusCode::ACCEPTED, &SentResponse { sent: true }),
        Reply::LoggedOut
        | Reply::PasswordChanged
        | Reply::SessionRevoked
        | Reply::PasswordReset
        | Reply::AccountDeleted
        | Reply::MfaDisabled => empty_response(StatusCode::NO_CONTENT),
        Reply::EmailChangeRequested | Reply::PasswordResetSent => {
            json_response(StatusCode::ACCEPTED, &SentResponse { sent: true })
        }
        Reply::EmailChanged(user) | Reply::User(user) => json_response(StatusCode::OK, &user),
        Reply::UserCreated(user) => json_response(StatusCode::CREATED, &user),
        Reply::UserPage(page) => {
            json_response(StatusCode::OK, &UserPageResponse { users: page.items, next_cursor: page.next_cursor })
        }
        Reply::AuditPage(page) => {
            json_response(StatusCode::OK, &AuditPageResponse { events: page.items, next_cursor: page.next_cursor })
        }
        Reply::UserSessions(sessions) => {
            // Nobody's current session: the caller is the admin, not the user.
            let sessions = sessions.into_iter().map(|s| SessionInfo::new(s, Uuid::nil())).collect();
            json_response(StatusCode::OK, &SessionsResponse { sessions })
        }
        Reply::SessionsRevoked(revoked) => json_response(StatusCode::OK, &RevokedResponse { revoked }),
        Reply::Export(export) => {
            let mut response = json_response(StatusCode::OK, &AccountExportResponse::from(*export));
            response.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"account-export.json\""),
            );
            response
        }
        other => {
            Canonical.render_error(&ErrorBody::misconfigured(&format!("the canonical dialect cannot render {other:?}")))
        }
    }
}

/// The session id of `DELETE /sessions/{id}`: one that is not a UUID is no session of the
/// caller's, `not_found`.
fn session_id(request: &RequestParts<'_>) -> Result<Uuid, ErrorBody> {
    path_id(request, "id")
}

/// The id in path parameter `name`: one that is not a UUID is no id of ours, `not_found`.
fn path_id(request: &RequestParts<'_>, name: &str) -> Result<Uuid, ErrorBody> {
    request
        .path_param(name)
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ErrorBody::from(&auth_core::AuthError::NotFound))
}

/// `value` as a JSON response with `status` and `Content-Type: application/json`; a value that
/// cannot be serialized (a bug) is logged and answered 500 `internal`.
#[must_use]
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(err) => {
            tracing::error!(error = %err, "a response body could not be serialized");
            (StatusCode::INTERNAL_SERVER_ERROR, br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec())
        }
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty response with `status` (204 and the like).
#[must_use]
pub fn empty_response(status: StatusCode) -> HttpResponse {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{AuthMethod, SecondFactorChallenge};
    use chrono::{TimeDelta, Utc};

    fn body(response: &HttpResponse) -> Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    fn session(id: Uuid) -> Session {
        let now = Utc::now();
        Session {
            id,
            user_id: Uuid::nil(),
            created_at: now,
            last_used_at: now,
            expires_at: now + TimeDelta::days(30),
            ip: None,
            user_agent: None,
            auth_method: AuthMethod::Password,
            revoked_at: None,
        }
    }

    #[test]
    fn a_login_that_needs_a_second_factor_renders_no_token() {
        let challenge = SecondFactorChallenge::new("opaque".into(), vec!["totp", "recovery_code"], 300);
        let response = Canonical.render(Reply::LoggedIn(LoginOutcome::SecondFactorRequired(challenge)));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            body(&response),
            json!({"mfa_required": true, "mfa_token": "opaque", "methods": ["totp", "recovery_code"], "expires_in": 300})
        );
    }

    #[test]
    fn the_session_list_marks_the_callers_session() {
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        let reply = Reply::Sessions { sessions: vec![session(other), session(mine)], current: mine };
        let listed = body(&Canonical.render(reply));
        let current: Vec<bool> =
            listed["sessions"].as_array().unwrap().iter().map(|s| s["current"].as_bool().unwrap()).collect();
        assert_eq!(current, [false, true]);
        assert!(listed["sessions"][0].get("auth_method").is_none(), "the canonical contract is unchanged");
    }

    #[test]
    fn errors_use_the_canonical_envelope_and_bad_session_ids_are_not_found() {
        let headers = HeaderMap::new();
        let params = [("id".to_owned(), "not-a-uuid".to_owned())];
        let request = RequestParts { headers: &headers, query: None, body: b"", path_params: &params };
        let error = Canonical.parse(Operation::RevokeSession, &request).unwrap_err();
        let response = Canonical.render_error(&error);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(&response)["error"]["code"], "not_found");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn every_operation_has_exactly_one_canonical_route() {
        let mut seen = std::collections::HashSet::new();
        for route in CANONICAL_ROUTES {
            assert!(seen.insert(route.operation), "{:?} twice", route.operation);
        }
        assert_eq!(seen.len(), 37);
    }
}
