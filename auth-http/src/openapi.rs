//! The canonical API as an OpenAPI 3.1 document ([`canonical_openapi`]), built from the code:
//! the paths and methods from [`CANONICAL_ROUTES`] (the table the router serves), the request
//! and response schemas from the very types the dialect parses into and renders
//! (`utoipa::ToSchema` on `auth-core`'s inputs and this crate's [`wire`](crate::wire) types),
//! and per [`Operation`] its success status, its error statuses, and whether it needs an
//! access token or the `admin` role. The match in `describe` is exhaustive: an operation added
//! without its description does not compile, and a test checks every route is in the document.
//!
//! Feature `openapi`. Each seed dialect is its own API; this document describes `canonical`
//! only (`docs/DIALECTS.md` is the reference for the others).

use auth_core::{
    AdminCreateUserRequest, AdminUpdateUserRequest, AuditEvent, ChangePasswordRequest, DeleteAccountRequest,
    EmailChangeConfirmRequest, EmailChangeRequest, EmailCodeRequest, ForgotPasswordRequest, ListAuditRequest,
    ListUsersRequest, LoginRequest, LogoutRequest, MfaConfirmRequest, MfaLoginRequest, PreferencesUpdate,
    RefreshRequest, RegisterRequest, ResetPasswordRequest, TotpConfirmRequest, TotpEnrollRequest, User,
    VerifyEmailRequest,
};
use http::Method;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema, ServerBuilder,
};
use utoipa::{IntoParams, OpenApi as _, ToSchema};

use crate::browser::{ACCESS_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE};
use crate::dialect::{Operation, CANONICAL_ROUTES};
use crate::wire::{
    AccountExportResponse, AuditPageResponse, CaptchaResponse, CaptchaStatusResponse, EnrollmentRequiredResponse,
    MfaStatusResponse, PreferencesResponse, RevokedResponse, SecondFactorResponse, SentResponse, SessionsResponse,
    TokenResponse, TotpEnrollmentResponse, UserPageResponse,
};

/// The error body of every non-2xx answer: `{"error":{"code","message","details"?}}`.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_request", "message": "the request is invalid",
    "details": {"fields": {"password": "is required"}}}}))]
#[allow(dead_code)] // A schema only: the dialect writes the body.
struct ErrorResponse {
    error: ErrorObject,
}

/// The error: a stable machine `code` (see `docs/API.md`, "Error codes"), a sentence for people,
/// and optional `details` (field errors, `retry_after_seconds`, password-policy `reasons`,
/// `attempts_left`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorObject {
    /// `invalid_request`, `invalid_credentials`, `unauthorized`, `rate_limited`, …
    code: String,
    /// A human sentence; never secrets or internals.
    message: String,
    /// Present for some codes only.
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

/// `{"recovery_codes":[…]}`: the answer of `POST /mfa/recovery-codes` and of confirming an
/// enrollment with an access token (`RecoveryCodesResponse` without its tokens).
#[derive(ToSchema)]
#[allow(dead_code)]
struct RecoveryCodes {
    /// Ten single-use codes `XXXXX-XXXXX`, shown once.
    recovery_codes: Vec<String>,
}

/// A JWK Set (RFC 7517 §5): the public keys access tokens are signed with, `GET
/// /.well-known/jwks.json`. Empty under HS256.
#[derive(ToSchema)]
#[allow(dead_code)]
struct JwkSetResponse {
    keys: Vec<PublicJwk>,
}

/// One public signing key (RFC 7517 §4; RFC 8037 `OKP` for EdDSA, RFC 7518 §6 `EC` and `RSA`).
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
struct PublicJwk {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    kty: String,
    /// The key id tokens name in their `kid` header (the RFC 7638 thumbprint by default).
    kid: String,
    /// `EdDSA`, `ES256` or `RS256`: the only algorithm accepted with this key.
    alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    key_use: String,
    /// `Ed25519` or `P-256`.
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// RSA modulus and exponent.
    n: Option<String>,
    e: Option<String>,
}

/// A token-introspection request (RFC 7662 §2.1), form-encoded.
#[derive(ToSchema)]
#[allow(dead_code)]
struct IntrospectionRequest {
    /// The access token to check.
    token: String,
    /// Ignored: only access tokens can be active.
    token_type_hint: Option<String>,
}

/// A token-introspection answer (RFC 7662 §2.2): `{"active":false}`, or `active: true` with the
/// token's claims.
#[derive(ToSchema)]
#[allow(dead_code)]
struct IntrospectionResponse {
    active: bool,
    /// `Bearer`.
    token_type: Option<String>,
    sub: Option<uuid::Uuid>,
    /// The session id.
    sid: Option<uuid::Uuid>,
    role: Option<String>,
    iat: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    iss: Option<String>,
    aud: Option<String>,
    jti: Option<uuid::Uuid>,
    amr: Option<Vec<String>>,
}

/// An OAuth error (RFC 6749 §5.2), the body of token introspection's errors: `invalid_client`,
/// `invalid_request`, `temporarily_unavailable`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// `GET /.well-known/jwks.json` and `POST /introspect`: the same in every dialect, in their
/// standards' formats.
fn key_paths(mut paths: PathsBuilder) -> PathsBuilder {
    let json = |schema| ContentBuilder::new().schema(Some(schema)).build();
    let jwks = OperationBuilder::new()
        .operation_id(Some("Jwks"))
        .summary(Some("The public keys access tokens are signed with (JWK Set, RFC 7517); cacheable"))
        .tag("keys")
        .response(
            "200",
            ResponseBuilder::new()
                .description("The key set; `Cache-Control: public, max-age=…`")
                .content("application/json", json(schema::<JwkSetResponse>()))
                .build(),
        );
    paths = paths.path(crate::keys::JWKS_PATH, PathItem::new(HttpMethod::Get, jwks.build()));
    let mut introspect = OperationBuilder::new()
        .operation_id(Some("Introspect"))
        .summary(Some("Token introspection (RFC 7662) for a service with the introspection client's credentials"))
        .tag("keys")
        .security(SecurityRequirement::new("introspectionClient", Vec::<String>::new()))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/x-www-form-urlencoded",
                    ContentBuilder::new().schema(Some(schema::<IntrospectionRequest>())).build(),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("Whether the token is active, with its claims when it is")
                .content("application/json", json(schema::<IntrospectionResponse>()))
                .build(),
        );
    for status in [400u16, 401, 415, 503] {
        introspect = introspect.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(description(status))
                .content("application/json", json(schema::<OAuthError>()))
                .build(),
        );
    }
    for status in [404u16, 413, 429] {
        let text = if status == 404 { "Token introspection is not configured" } else { description(status) };
        introspect = introspect.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(text)
                .content("application/json", json(schema::<ErrorResponse>()))
                .build(),
        );
    }
    paths.path(crate::keys::INTROSPECTION_PATH, PathItem::new(HttpMethod::Post, introspect.build()))
}

/// The answer of `POST /mfa/totp/confirm`: the recovery codes, with the Tokens fields beside
/// them when an enrollment token finished a login.
fn totp_confirmed() -> RefOr<Schema> {
    let with_tokens = AllOfBuilder::new().item(schema::<RecoveryCodes>()).item(schema::<TokenResponse>());
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new().item(schema::<RecoveryCodes>()).item(RefOr::T(Schema::AllOf(with_tokens.build()))).build(),
    ))
}

/// The component schemas: every type reachable from the API's requests and responses.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ErrorResponse,
    RegisterRequest,
    LoginRequest,
    RefreshRequest,
    LogoutRequest,
    PreferencesUpdate,
    ChangePasswordRequest,
    EmailCodeRequest,
    VerifyEmailRequest,
    ForgotPasswordRequest,
    ResetPasswordRequest,
    EmailChangeRequest,
    EmailChangeConfirmRequest,
    DeleteAccountRequest,
    TotpEnrollRequest,
    TotpConfirmRequest,
    MfaConfirmRequest,
    MfaLoginRequest,
    AdminCreateUserRequest,
    AdminUpdateUserRequest,
    TokenResponse,
    SecondFactorResponse,
    EnrollmentRequiredResponse,
    TotpEnrollmentResponse,
    RecoveryCodes,
    MfaStatusResponse,
    SessionsResponse,
    PreferencesResponse,
    CaptchaStatusResponse,
    CaptchaResponse,
    SentResponse,
    UserPageResponse,
    AuditPageResponse,
    RevokedResponse,
    AccountExportResponse,
    User,
    AuditEvent,
    JwkSetResponse,
    PublicJwk,
    IntrospectionRequest,
    IntrospectionResponse,
    OAuthError,
)))]
struct Components;

/// A reference to component schema `T`.
fn schema<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// What the document says of one operation.
struct Doc {
    summary: &'static str,
    /// The JSON body's schema, and whether the body is required.
    body: Option<(RefOr<Schema>, bool)>,
    /// The success status, its description and its JSON schema (`None`: no body).
    ok: (u16, &'static str, Option<RefOr<Schema>>),
    /// Error statuses beyond those every operation may answer (429, 503) and those implied by
    /// a body (400, 413, 415) or an access token (401; 403 for the admin role).
    errors: &'static [u16],
    tag: &'static str,
}

impl Doc {
    fn new(tag: &'static str, summary: &'static str, ok: (u16, &'static str, Option<RefOr<Schema>>)) -> Self {
        Self { summary, body: None, ok, errors: &[], tag }
    }

    fn body(mut self, schema: RefOr<Schema>) -> Self {
        self.body = Some((schema, true));
        self
    }

    fn optional_body(mut self, schema: RefOr<Schema>) -> Self {
        self.body = Some((schema, false));
        self
    }

    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }
}

const OK: u16 = 200;
const CREATED: u16 = 201;
const ACCEPTED: u16 = 202;
const NO_CONTENT: u16 = 204;

/// The description of `operation`: one arm per operation, no default arm.
fn describe(operation: Operation) -> Doc {
    use Operation as O;
    let tokens = || {
        (
            OK,
            "Tokens (under cookie transport without `refresh_token`, which is in its cookie)",
            Some(schema::<TokenResponse>()),
        )
    };
    let user = |status| (status, "The user", Some(schema::<User>()));
    let sent = || (ACCEPTED, "Accepted", Some(schema::<SentResponse>()));
    let none = || (NO_CONTENT, "Done", None);
    match operation {
        O::CaptchaStatus => Doc::new(
            "captcha",
            "Captcha and protection settings",
            (OK, "Settings", Some(schema::<CaptchaStatusResponse>())),
        ),
        O::Captcha => Doc::new(
            "captcha",
            "A new image captcha",
            (OK, "A challenge, or `enabled: false`", Some(schema::<CaptchaResponse>())),
        ),
        O::Register => Doc::new(
            "session",
            "Register and log in",
            (CREATED, "Tokens of the new account's session", Some(schema::<TokenResponse>())),
        )
        .body(schema::<RegisterRequest>())
        .errors(&[403, 404, 409, 502]),
        O::Login => {
            let outcomes = OneOfBuilder::new()
                .item(schema::<TokenResponse>())
                .item(schema::<SecondFactorResponse>())
                .item(schema::<EnrollmentRequiredResponse>());
            Doc::new(
                "session",
                "Log in with a password",
                (OK, "Tokens, or a second-factor challenge", Some(RefOr::T(Schema::OneOf(outcomes.build())))),
            )
            .body(schema::<LoginRequest>())
            .errors(&[401, 403, 502])
        }
        O::Refresh => Doc::new("session", "Spend a refresh token for new tokens (rotation)", tokens())
            .optional_body(schema::<RefreshRequest>())
            .errors(&[401, 403]),
        O::Logout => Doc::new("session", "End this session, or all of the user's", none())
            .optional_body(schema::<LogoutRequest>())
            .errors(&[403]),
        O::Me => Doc::new("account", "The caller's account", user(OK)),
        O::UpdatePreferences => Doc::new(
            "account",
            "Change theme or language",
            (OK, "The preferences", Some(schema::<PreferencesResponse>())),
        )
        .body(schema::<PreferencesUpdate>())
        .errors(&[403]),
        O::ChangePassword => Doc::new("account", "Change the password (other sessions end)", none())
            .body(schema::<ChangePasswordRequest>())
            .errors(&[403]),
        O::Sessions => Doc::new(
            "session",
            "The caller's live sessions",
            (OK, "Sessions, newest first", Some(schema::<SessionsResponse>())),
        ),
        O::RevokeSession => Doc::new("session", "End one of the caller's sessions", none()).errors(&[400, 403, 404]),
        O::EmailCode => {
            Doc::new("email", "Mail a 6-digit code", sent()).body(schema::<EmailCodeRequest>()).errors(&[403, 404, 502])
        }
        O::VerifyEmail => Doc::new("email", "Verify the email address with a mailed code", user(OK))
            .body(schema::<VerifyEmailRequest>())
            .errors(&[403]),
        O::ForgotPassword => Doc::new("password", "Mail a password-reset link", sent())
            .body(schema::<ForgotPasswordRequest>())
            .errors(&[403, 404, 502]),
        O::ResetPassword => {
            Doc::new("password", "Set a new password with a reset link's token or a mailed code", none())
                .body(schema::<ResetPasswordRequest>())
                .errors(&[403])
        }
        O::ChangeEmail => Doc::new("email", "Start changing the email address", sent())
            .body(schema::<EmailChangeRequest>())
            .errors(&[403, 404, 502]),
        O::ConfirmEmailChange => Doc::new("email", "Confirm the new address with its code", user(OK))
            .body(schema::<EmailChangeConfirmRequest>())
            .errors(&[403, 409]),
        O::DeleteAccount => Doc::new("account", "Delete the caller's account", none())
            .body(schema::<DeleteAccountRequest>())
            .errors(&[403, 409]),
        O::ExportAccount => Doc::new(
            "account",
            "Everything stored about the caller",
            (OK, "The export (`Content-Disposition: attachment`)", Some(schema::<AccountExportResponse>())),
        ),
        O::MyAudit => Doc::new(
            "account",
            "The caller's own audit events",
            (OK, "A page of events, newest first", Some(schema::<AuditPageResponse>())),
        )
        .errors(&[400]),
        O::AdminListUsers => {
            Doc::new("admin", "List and search users", (OK, "A page of users", Some(schema::<UserPageResponse>())))
                .errors(&[400])
        }
        O::AdminGetUser => Doc::new("admin", "One user", user(OK)).errors(&[400, 404]),
        O::AdminCreateUser => Doc::new("admin", "Create a user", user(CREATED))
            .body(schema::<AdminCreateUserRequest>())
            .errors(&[404, 409, 502]),
        O::AdminUpdateUser => Doc::new("admin", "Change a user's role, status, email, username or metadata", user(OK))
            .body(schema::<AdminUpdateUserRequest>())
            .errors(&[404, 409]),
        O::AdminDeleteUser => Doc::new("admin", "Delete a user", none()).errors(&[400, 404, 409]),
        O::AdminUserSessions => Doc::new(
            "admin",
            "A user's live sessions",
            (OK, "Sessions, newest first", Some(schema::<SessionsResponse>())),
        )
        .errors(&[400, 404]),
        O::AdminRevokeUserSessions => {
            Doc::new("admin", "End every session of a user", (OK, "How many ended", Some(schema::<RevokedResponse>())))
                .errors(&[400, 404])
        }
        O::AdminRevokeUserSession => {
            Doc::new("admin", "End one session of a user", (OK, "How many ended", Some(schema::<RevokedResponse>())))
                .errors(&[400, 404])
        }
        O::AdminSendPasswordReset => {
            Doc::new("admin", "Mail a user a password-reset link", sent()).errors(&[400, 404, 502])
        }
        O::AdminAudit => Doc::new(
            "admin",
            "The audit log",
            (OK, "A page of events, newest first", Some(schema::<AuditPageResponse>())),
        )
        .errors(&[400]),
        O::LoginMfa => Doc::new("second factor", "Finish a login with a TOTP or recovery code", tokens())
            .body(schema::<MfaLoginRequest>())
            .errors(&[401, 403, 404]),
        O::MfaStatus => {
            Doc::new("second factor", "The caller's second factor", (OK, "Status", Some(schema::<MfaStatusResponse>())))
                .errors(&[404])
        }
        O::MfaTotpEnroll => Doc::new(
            "second factor",
            "Start enrolling a TOTP authenticator",
            (OK, "The secret, otpauth URI and QR code", Some(schema::<TotpEnrollmentResponse>())),
        )
        .body(schema::<TotpEnrollRequest>())
        .errors(&[401, 403, 404, 409]),
        O::MfaTotpConfirm => Doc::new(
            "second factor",
            "Confirm the enrollment with a code",
            (OK, "Recovery codes (and tokens after an enforced enrollment)", Some(totp_confirmed())),
        )
        .body(schema::<TotpConfirmRequest>())
        .errors(&[401, 403, 404]),
        O::MfaRecoveryCodes => Doc::new(
            "second factor",
            "New recovery codes",
            (OK, "Ten codes, shown once", Some(schema::<RecoveryCodes>())),
        )
        .body(schema::<MfaConfirmRequest>())
        .errors(&[403, 404]),
        O::MfaTotpDisable => Doc::new("second factor", "Remove the second factor", none())
            .body(schema::<MfaConfirmRequest>())
            .errors(&[403, 404]),
        O::AdminResetMfa => Doc::new("admin", "Remove a user's second factor", none()).errors(&[400, 404]),
    }
}

/// The query parameters of `operation`.
fn query_parameters(operation: Operation) -> Vec<utoipa::openapi::path::Parameter> {
    match operation {
        Operation::AdminListUsers => ListUsersRequest::into_params(|| Some(ParameterIn::Query)),
        Operation::AdminAudit => ListAuditRequest::into_params(|| Some(ParameterIn::Query)),
        // The caller's own events: no `user_id`.
        Operation::MyAudit => ListAuditRequest::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .filter(|p| p.name != "user_id")
            .collect(),
        _ => Vec::new(),
    }
}

fn description(status: u16) -> &'static str {
    match status {
        400 => "Invalid input (`invalid_request`, `weak_password`, `invalid_code`, `invalid_mfa_code`, captcha)",
        401 => "Missing, invalid or expired credentials or token",
        403 => "Forbidden (role, `csrf_rejected`, `account_disabled`, `mfa_required`, a wrong current password)",
        404 => "Not found (or the feature is not configured: mailer, second factor)",
        409 => "Conflict (`username_taken`, `email_taken`, `last_admin`, `mfa_already_enabled`)",
        413 => "Body too large (`payload_too_large`)",
        415 => "Body is not JSON (`unsupported_media_type`)",
        429 => "Rate limited (`Retry-After`)",
        502 => "The captcha or mail service failed; nothing was changed",
        503 => {
            "The store is unavailable or the server is overloaded (`Retry-After` when overloaded); nothing was changed"
        }
        _ => "Error",
    }
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The canonical API's OpenAPI 3.1 document, for routes mounted at `mount` (e.g. `/api/auth`,
/// the document's server URL).
#[must_use]
pub fn canonical_openapi(mount: &str) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in CANONICAL_ROUTES {
        let operation = route.operation;
        let doc = describe(operation);
        let mut op = OperationBuilder::new()
            .operation_id(Some(format!("{operation:?}")))
            .summary(Some(doc.summary))
            .tag(doc.tag);
        for name in route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            let uuid = ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(uuid)),
            );
        }
        for parameter in query_parameters(operation) {
            op = op.parameter(parameter);
        }
        let mut errors: Vec<u16> = doc.errors.to_vec();
        if let Some((body, required)) = doc.body {
            let required = if required { Required::True } else { Required::False };
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", ContentBuilder::new().schema(Some(body)).build())
                    .required(Some(required))
                    .build(),
            ));
            errors.extend([400, 413, 415]);
        }
        // Security: an access token (header or, when configured, its cookie); refresh and
        // logout also take the refresh-token cookie.
        let bearer = || SecurityRequirement::new("bearer", Vec::<String>::new());
        let access_cookie = || SecurityRequirement::new("accessTokenCookie", Vec::<String>::new());
        if operation.requires_auth() {
            op = op.security(bearer()).security(access_cookie());
            errors.push(401);
            if operation == Operation::Logout {
                op = op.security(SecurityRequirement::new("refreshTokenCookie", Vec::<String>::new()));
            }
            if operation.required_role().is_some() {
                errors.push(403);
            }
        } else if operation.accepts_auth() {
            op = op.security(bearer()).security(access_cookie()).security(SecurityRequirement::default());
        } else if operation == Operation::Refresh {
            op = op
                .security(SecurityRequirement::default())
                .security(SecurityRequirement::new("refreshTokenCookie", Vec::<String>::new()));
        }
        errors.extend([429, 503]);
        errors.sort_unstable();
        errors.dedup();
        let (status, text, body) = doc.ok;
        let mut ok = ResponseBuilder::new().description(text);
        if let Some(body) = body {
            ok = ok.content("application/json", ContentBuilder::new().schema(Some(body)).build());
        }
        op = op.response(status.to_string(), ok.build());
        for status in errors {
            let mut response = ResponseBuilder::new()
                .description(description(status))
                .content("application/json", ContentBuilder::new().schema(Some(schema::<ErrorResponse>())).build());
            if matches!(status, 429 | 503) {
                let seconds = ObjectBuilder::new().schema_type(Type::Integer);
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new().schema(Some(seconds)).description(Some("Seconds to wait")).build(),
                );
            }
            op = op.response(status.to_string(), response.build());
        }
        paths = paths.path(route.path, PathItem::new(http_method(&route.method), op.build()));
    }
    let paths = key_paths(paths);
    let mut components = Components::openapi().components.unwrap_or_default();
    components.add_security_scheme(
        "introspectionClient",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    components.add_security_scheme(
        "accessTokenCookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            ACCESS_TOKEN_COOKIE,
            "The access token as an HttpOnly cookie (cookie transport with the access-token cookie on); unsafe methods need an allowed origin",
        ))),
    );
    components.add_security_scheme(
        "refreshTokenCookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            REFRESH_TOKEN_COOKIE,
            "The refresh token as an HttpOnly cookie scoped to the auth mount (cookie transport)",
        ))),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("auth: canonical HTTP API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Registration, login, sessions, refresh-token rotation, email codes, password reset, second factor and an admin API. See docs/API.md."))
                .build(),
        )
        .servers(Some([ServerBuilder::new().url(mount).build()]))
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// [`canonical_openapi`] as JSON.
#[must_use]
pub fn canonical_openapi_json(mount: &str) -> String {
    // A document of plain strings and maps always serializes.
    canonical_openapi(mount).to_json().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_route_is_in_the_document_with_its_method() {
        let doc: serde_json::Value = serde_json::from_str(&canonical_openapi_json("/api/auth")).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"][0]["url"], "/api/auth");
        for route in CANONICAL_ROUTES {
            let method = route.method.as_str().to_ascii_lowercase();
            let op = &doc["paths"][route.path][&method];
            assert!(op.is_object(), "{} {} is missing", route.method, route.path);
            assert!(op["responses"].as_object().unwrap().len() >= 3, "{} {}", route.method, route.path);
        }
        let count: usize = doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
        assert_eq!(count, CANONICAL_ROUTES.len() + 2, "no route the router does not serve (and the two key routes)");
        assert!(doc["paths"]["/.well-known/jwks.json"]["get"].is_object());
        assert!(doc["paths"]["/introspect"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            .is_object());
    }

    #[test]
    fn recovery_codes_alone_satisfy_their_schema_and_tokens_are_optional_beside_them() {
        let doc: serde_json::Value = serde_json::from_str(&canonical_openapi_json("/api/auth")).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["RecoveryCodes"]["required"], serde_json::json!(["recovery_codes"]));
        let ok = |path: &str| {
            doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"].clone()
        };
        assert_eq!(ok("/mfa/recovery-codes")["$ref"], "#/components/schemas/RecoveryCodes");
        let confirm = ok("/mfa/totp/confirm");
        assert_eq!(confirm["oneOf"][0]["$ref"], "#/components/schemas/RecoveryCodes", "{confirm}");
        assert_eq!(confirm["oneOf"][1]["allOf"][1]["$ref"], "#/components/schemas/TokenResponse", "{confirm}");
    }

    #[test]
    fn every_referenced_schema_is_defined() {
        let json = canonical_openapi_json("/api/auth");
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in json.split("\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
    }
}
