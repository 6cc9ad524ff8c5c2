//! Running an operation: [`execute`] (typed input → the core's flow → typed reply) and
//! [`handle`] (request parts → response, through a [`Dialect`]).

use auth_core::{Auth, AuthError, Claims, IssuedTokens, LoginOutcome, RequestContext, SecretString};

use crate::browser;
use crate::dialect::{Dialect, HttpResponse, Input, Operation, Reply, RequestParts};
use crate::error::ErrorBody;

/// Runs the flow of `input` on `auth`. `claims` are the caller's verified access-token claims,
/// required by the operations that [`Operation::requires_auth`] (the adapter's access-token
/// layer puts them there). Rate rules of the operation's own are applied by the core; the
/// per-IP "every other route" rule is the adapter's (see [`Operation::has_own_rate_rule`]).
///
/// # Errors
/// The flow's [`AuthError`]; `unauthorized` for an operation that requires claims when none
/// are given.
pub async fn execute(
    auth: &Auth,
    input: Input,
    ctx: &RequestContext,
    claims: Option<&Claims>,
) -> Result<Reply, AuthError> {
    let caller = || claims.ok_or(AuthError::Unauthorized);
    // The admin operations act as the caller, who must carry role `admin`.
    let admin = || auth.admin_as(caller()?, ctx);
    Ok(match input {
        Input::CaptchaStatus => Reply::CaptchaStatus(auth.captcha_status()),
        Input::Captcha => Reply::Captcha(auth.captcha_challenge().await?),
        Input::Register(req) => Reply::Registered(Box::new(auth.register(req, ctx).await?)),
        Input::Login(req) => Reply::LoggedIn(auth.login(req, ctx).await?),
        Input::Refresh(req) => Reply::Refreshed(Box::new(match &req.access_token {
            Some(access_token) => {
                auth.refresh_with_access_token(&req.refresh_token, access_token.expose(), ctx).await?
            }
            None => auth.refresh(&req.refresh_token, ctx).await?,
        })),
        Input::Logout(req) => {
            auth.logout(caller()?, req.all, ctx).await?;
            Reply::LoggedOut
        }
        Input::Me => Reply::Me(auth.me(caller()?).await?),
        Input::UpdatePreferences(update) => Reply::Preferences(auth.update_preferences(caller()?, update).await?),
        Input::ChangePassword(req) => {
            auth.change_password(caller()?, req, ctx).await?;
            Reply::PasswordChanged
        }
        Input::Sessions => {
            let claims = caller()?;
            Reply::Sessions { sessions: auth.sessions(claims).await?, current: claims.sid }
        }
        Input::RevokeSession(id) => {
            auth.revoke_session(caller()?, id, ctx).await?;
            Reply::SessionRevoked
        }
        Input::EmailCode(req) => {
            auth.send_email_code(req, ctx).await?;
            Reply::CodeSent
        }
        Input::VerifyEmail(req) => Reply::EmailVerified(auth.verify_email(caller()?, req, ctx).await?),
        Input::ForgotPassword(req) => {
            auth.forgot_password(req, ctx).await?;
            Reply::ResetLinkSent
        }
        Input::ResetPassword(req) => {
            auth.reset_password(req, ctx).await?;
            Reply::PasswordReset
        }
        Input::ChangeEmail(req) => {
            auth.request_email_change(caller()?, req, ctx).await?;
            Reply::EmailChangeRequested
        }
        Input::ConfirmEmailChange(req) => Reply::EmailChanged(auth.confirm_email_change(caller()?, req, ctx).await?),
        Input::DeleteAccount(req) => {
            auth.delete_account(caller()?, req, ctx).await?;
            Reply::AccountDeleted
        }
        Input::ExportAccount => Reply::Export(Box::new(auth.export_account(caller()?, ctx).await?)),
        Input::MyAudit(req) => Reply::AuditPage(auth.my_audit_log(caller()?, &req).await?),
        Input::AdminListUsers(req) => Reply::UserPage(admin()?.list_users(&req).await?),
        Input::AdminGetUser(id) => Reply::User(admin()?.user(id).await?),
        Input::AdminCreateUser(req) => Reply::UserCreated(admin()?.create_user(req).await?),
        Input::AdminUpdateUser(id, req) => Reply::User(admin()?.update_user(id, req).await?),
        Input::AdminDeleteUser(id) => {
            admin()?.delete_user(id).await?;
            Reply::AccountDeleted
        }
        Input::AdminUserSessions(id) => Reply::UserSessions(admin()?.user_sessions(id).await?),
        Input::AdminRevokeUserSessions(id) => Reply::SessionsRevoked(admin()?.revoke_user_sessions(id).await?),
        Input::AdminRevokeUserSession(id, sid) => {
            admin()?.revoke_user_session(id, sid).await?;
            Reply::SessionsRevoked(1)
        }
        Input::AdminSendPasswordReset(id) => {
            admin()?.send_password_reset(id).await?;
            Reply::PasswordResetSent
        }
        Input::AdminAudit(req) => Reply::AuditPage(admin()?.audit_log(&req).await?),
        Input::LoginMfa(req) => {
            Reply::LoggedIn(LoginOutcome::Authenticated(Box::new(auth.login_second_factor(req, ctx).await?)))
        }
        Input::MfaStatus => Reply::MfaStatus(auth.mfa_status(caller()?).await?),
        Input::MfaTotpEnroll(req) => Reply::TotpEnrollment(auth.enroll_totp(claims, req, ctx).await?),
        Input::MfaTotpConfirm(req) => Reply::TotpConfirmed(auth.confirm_totp(claims, req, ctx).await?),
        Input::MfaRecoveryCodes(req) => {
            Reply::RecoveryCodes(auth.regenerate_recovery_codes(caller()?, req, ctx).await?)
        }
        Input::MfaTotpDisable(req) => {
            auth.disable_totp(caller()?, req, ctx).await?;
            Reply::MfaDisabled
        }
        Input::AdminResetMfa(id) => {
            admin()?.reset_mfa(id).await?;
            Reply::MfaDisabled
        }
    })
}

/// Serves one request of `operation`: `dialect` parses it, [`execute`] runs it, `dialect`
/// renders the reply or the error. An error response carries its [`ErrorBody`] in its
/// extensions, so that adapters can re-render it (`auth_axum::render_errors_with`).
///
/// With cookie transport on (`AuthConfig::browser`, see [`crate::browser`]), register, login,
/// the second-factor login, confirming an enrollment with its token, and refresh set the token
/// cookies (and, under `TokenTransport::Cookie`, leave `refresh_token` out of the body) for
/// requests from a trusted site and refuse foreign ones (403 `csrf_rejected`); `/refresh` with
/// an empty body or `{}` and `/logout` without an access token use the refresh-token cookie;
/// logout from a trusted site, revoking the caller's own session, deleting the account and a
/// refresh refused for its token clear the cookies.
pub async fn handle(
    auth: &Auth,
    dialect: &dyn Dialect,
    operation: Operation,
    request: &RequestParts<'_>,
    ctx: &RequestContext,
    claims: Option<&Claims>,
) -> HttpResponse {
    if auth.config().browser.token_transport.uses_cookies() && touches_cookies(operation) {
        return handle_with_cookies(auth, dialect, operation, request, ctx, claims).await;
    }
    let result = match parse(dialect, operation, request) {
        Ok(input) => execute(auth, input, ctx, claims).await.map_err(|err| ErrorBody::from_auth_error(&err)),
        Err(error) => Err(error),
    };
    respond(dialect, result)
}

/// `dialect`'s input of `operation`, checked to be of that operation.
fn parse(dialect: &dyn Dialect, operation: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
    match dialect.parse(operation, request)? {
        input if input.operation() == operation => Ok(input),
        input => Err(ErrorBody::misconfigured(&format!(
            "dialect {} parsed {:?} as the input of {:?}",
            dialect.name(),
            operation,
            input.operation()
        ))),
    }
}

fn respond(dialect: &dyn Dialect, result: Result<Reply, ErrorBody>) -> HttpResponse {
    match result {
        Ok(reply) => dialect.render(reply),
        Err(error) => error_response(dialect, error),
    }
}

/// The operations that set, read or end the token cookies.
fn touches_cookies(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::Register
            | Operation::Login
            | Operation::LoginMfa
            | Operation::MfaTotpConfirm
            | Operation::Refresh
            | Operation::Logout
            | Operation::RevokeSession
            | Operation::DeleteAccount
    )
}

/// The tokens of a reply that opens a session, when it has them.
fn issued_tokens(reply: &mut Reply) -> Option<&mut IssuedTokens> {
    match reply {
        Reply::Registered(tokens) | Reply::Refreshed(tokens) | Reply::LoggedIn(LoginOutcome::Authenticated(tokens)) => {
            Some(tokens)
        }
        Reply::TotpConfirmed(confirmation) => confirmation.tokens.as_deref_mut(),
        _ => None,
    }
}

/// Whether a body asks for the cookie's refresh token: empty, or an empty JSON object.
fn is_empty_body(body: &[u8]) -> bool {
    let body = body.trim_ascii();
    body.is_empty()
        || serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body).is_ok_and(|m| m.is_empty())
}

async fn handle_with_cookies(
    auth: &Auth,
    dialect: &dyn Dialect,
    operation: Operation,
    request: &RequestParts<'_>,
    ctx: &RequestContext,
    claims: Option<&Claims>,
) -> HttpResponse {
    let browser = &auth.config().browser;
    let fail = |err: AuthError| ErrorBody::from_auth_error(&err);
    // Whether the answer sets the cookies (a trusted site) and whether it deletes them.
    let site = browser::request_site(request.headers, &browser.allowed_origins);
    let mut set_cookies = false;
    // Only a trusted site may have its logout delete the cookies: a foreign page posting to
    // `/logout` (refused, or without the `SameSite` cookie) must not sign the browser out.
    let mut clear = operation == Operation::Logout && site == browser::RequestSite::Trusted;
    // The origin check of a request a cookie authenticates (`browser::check_origin`'s rule).
    let trusted = || if site == browser::RequestSite::Trusted { Ok(()) } else { Err(AuthError::CsrfRejected) };
    let result: Result<Reply, ErrorBody> = async {
        let opens_session =
            matches!(operation, Operation::Register | Operation::Login | Operation::LoginMfa | Operation::Refresh)
                || (operation == Operation::MfaTotpConfirm && claims.is_none());
        if opens_session {
            set_cookies = browser::may_set_cookies(browser.token_transport, site).map_err(fail)?;
        }
        let refresh_cookie = browser::cookie(request.headers, browser::REFRESH_TOKEN_COOKIE);
        let input = match operation {
            Operation::Refresh if is_empty_body(request.body) => {
                let token = refresh_cookie.ok_or(AuthError::InvalidRefreshToken).map_err(fail)?;
                trusted().map_err(fail)?;
                let refreshed = auth.refresh(&SecretString::from(token), ctx).await;
                // A refused cookie is dead: delete it so the page stops sending it. A failing
                // store (503) says nothing about the cookie, which is kept for the retry.
                clear = matches!(refreshed, Err(AuthError::InvalidRefreshToken | AuthError::RefreshTokenReused));
                return refreshed.map(|tokens| Reply::Refreshed(Box::new(tokens))).map_err(fail);
            }
            Operation::Logout if claims.is_none() => {
                let token = refresh_cookie.ok_or(AuthError::Unauthorized).map_err(fail)?;
                trusted().map_err(fail)?;
                let Input::Logout(req) = parse(dialect, operation, request)? else {
                    return Err(ErrorBody::misconfigured("logout parsed as another operation"));
                };
                auth.logout_with_refresh_token(&SecretString::from(token), req.all, ctx).await.map_err(fail)?;
                return Ok(Reply::LoggedOut);
            }
            _ => parse(dialect, operation, request)?,
        };
        let ends_own_session = match &input {
            Input::RevokeSession(id) => claims.is_some_and(|c| c.sid == *id),
            Input::DeleteAccount(_) => true,
            _ => false,
        };
        let reply = execute(auth, input, ctx, claims).await.map_err(fail)?;
        clear |= ends_own_session;
        Ok(reply)
    }
    .await;
    let mut cookies = None;
    let result = result.map(|mut reply| {
        if let Some(tokens) = issued_tokens(&mut reply).filter(|_| set_cookies) {
            let refresh_token = if browser.token_transport.refresh_token_in_body() {
                tokens.refresh_token.clone()
            } else {
                std::mem::take(&mut tokens.refresh_token)
            };
            cookies =
                Some((tokens.access_token.clone(), tokens.expires_in, refresh_token, tokens.refresh_expires_in()));
        }
        reply
    });
    // A logout that failed on the server's side (5xx) keeps the cookies, so that it can be retried.
    clear &= result.as_ref().err().is_none_or(|err| !err.status.is_server_error());
    let mut response = respond(dialect, result);
    if clear {
        browser::clear_token_cookies(response.headers_mut(), browser);
    }
    if let Some((access, expires_in, refresh, refresh_expires_in)) = cookies {
        browser::set_token_cookies(response.headers_mut(), browser, &access, expires_in, &refresh, refresh_expires_in);
    }
    response
}

/// `dialect`'s rendering of `error`, with the headers the error implies whatever the envelope
/// ([`ErrorBody::add_headers`]: `Retry-After`, `WWW-Authenticate`) and the [`ErrorBody`] in the
/// response extensions.
#[must_use]
pub fn error_response(dialect: &dyn Dialect, error: ErrorBody) -> HttpResponse {
    let mut response = dialect.render_error(&error);
    error.add_headers(response.headers_mut());
    response.extensions_mut().insert(error);
    response
}

/// `response` re-rendered by `dialect` if it is an error answer of this library (it carries an
/// [`ErrorBody`] in its extensions, as [`error_response`] leaves it), keeping every header of the
/// original that the new answer does not set itself ([`keep_missing_headers`]); other responses
/// unchanged. What the adapters' routers and "errors in a dialect" layers do.
pub fn rerender_error<B>(
    dialect: &dyn Dialect,
    response: http::Response<B>,
) -> Result<HttpResponse, http::Response<B>> {
    match response.extensions().get::<ErrorBody>() {
        Some(error) => {
            let mut rendered = error_response(dialect, error.clone());
            keep_missing_headers(response.headers(), rendered.headers_mut());
            Ok(rendered)
        }
        None => Err(response),
    }
}

/// Adds to `rendered` every header of `original` that it does not set itself (`Cache-Control`,
/// `Pragma`, `Allow`, `Set-Cookie`, a host's own) but `Content-Length`: re-rendering an error
/// changes its envelope, not what the layers around it added.
pub fn keep_missing_headers(original: &http::HeaderMap, rendered: &mut http::HeaderMap) {
    let missing: Vec<_> = original.keys().filter(|name| !rendered.contains_key(*name)).cloned().collect();
    for name in missing {
        if name == http::header::CONTENT_LENGTH {
            continue;
        }
        for value in original.get_all(&name) {
            rendered.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    /// Renders errors as bare text and forgets the error's headers.
    #[derive(Debug)]
    struct Forgetful;

    impl Dialect for Forgetful {
        fn name(&self) -> &'static str {
            "forgetful"
        }
        fn render_error(&self, error: &ErrorBody) -> HttpResponse {
            let mut response = http::Response::new(error.code.as_bytes().to_vec());
            *response.status_mut() = error.status;
            response
        }
    }

    #[test]
    fn an_error_carries_retry_after_and_www_authenticate_whatever_the_dialect() {
        let limited = error_response(&Forgetful, ErrorBody::from(&AuthError::RateLimited { retry_after_seconds: 7 }));
        assert_eq!(limited.headers()[header::RETRY_AFTER], "7");
        assert_eq!(limited.extensions().get::<ErrorBody>().unwrap().code, "rate_limited");
        let expired = error_response(&Forgetful, ErrorBody::from(&AuthError::TokenExpired));
        assert_eq!(expired.headers()[header::WWW_AUTHENTICATE], "Bearer error=\"invalid_token\"");
    }
}
