//! Cookie transport and its CSRF defence over HTTP (`AUTH_TOKEN_TRANSPORT=cookie|both`,
//! `AUTH_ACCESS_TOKEN_COOKIE`): the refresh token only in an `HttpOnly; Secure` cookie scoped to
//! the auth mount, `/refresh` and `/logout` reading it, the cookies cleared when the session
//! ends, and every cookie-authenticated or cookie-setting request refused (403 `csrf_rejected`,
//! nothing changed) unless it comes from the API's own site or an allowed origin.

use auth_e2e_tests::{access, Resp, TestServer, PASSWORD};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

const APP: &str = "https://app.example.com";
const REFRESH: &str = "__Secure-auth-refresh";
const ACCESS: &str = "__Host-auth-access";

/// Browser headers of a request: `Sec-Fetch-Site` and `Origin`.
#[derive(Clone, Copy)]
enum From {
    SameOrigin,
    Allowed,
    Evil,
    Nowhere,
}

async fn send(
    s: &TestServer,
    method: Method,
    path: &str,
    from: From,
    cookies: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let mut req = s.request(method, path);
    req = match from {
        From::SameOrigin => req.header("Sec-Fetch-Site", "same-origin"),
        From::Allowed => req.header("Sec-Fetch-Site", "cross-site").header("Origin", APP),
        From::Evil => req.header("Sec-Fetch-Site", "cross-site").header("Origin", "https://evil.example"),
        From::Nowhere => req,
    };
    if !cookies.is_empty() {
        let cookie = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        req = req.header("Cookie", cookie);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    Resp::from(req.send().await).await
}

/// The `Set-Cookie` header for cookie `name`, if any.
fn set_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|v| v.starts_with(&format!("{name}=")))
}

/// The value `Set-Cookie` gives cookie `name`.
fn cookie_value(headers: &HeaderMap, name: &str) -> String {
    let line = set_cookie(headers, name).unwrap_or_else(|| panic!("no Set-Cookie for {name}: {headers:?}"));
    line[name.len() + 1..].split(';').next().unwrap().to_owned()
}

fn is_removal(headers: &HeaderMap, name: &str) -> bool {
    set_cookie(headers, name).is_some_and(|v| v.starts_with(&format!("{name}=;")) && v.contains("Max-Age=0"))
}

async fn cookie_server(extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![("AUTH_TOKEN_TRANSPORT", "cookie"), ("AUTH_ALLOWED_ORIGINS", APP)];
    vars.extend_from_slice(extra);
    TestServer::start_with(&vars).await
}

fn credentials(username: &str) -> Option<Value> {
    Some(json!({"username": username, "password": PASSWORD}))
}

#[tokio::test]
async fn the_refresh_token_travels_only_in_an_http_only_secure_cookie_scoped_to_the_auth_mount() {
    let s = cookie_server(&[]).await;
    let r = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("cleo")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none(), "no refresh token in the body: {}", r.body);
    assert!(r.body["access_token"].is_string() && r.body["refresh_expires_in"].as_u64().unwrap() > 0);
    let line = set_cookie(&r.headers, REFRESH).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/api/auth", "Max-Age=2592000"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    assert!(set_cookie(&r.headers, ACCESS).is_none(), "no access-token cookie unless configured");

    // Login and refresh with an empty body (or none) use and replace the cookie.
    let login = send(&s, Method::POST, "/api/auth/login", From::SameOrigin, &[], credentials("cleo")).await;
    assert_eq!(login.status, 200);
    let first = cookie_value(&login.headers, REFRESH);
    let refreshed =
        send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[(REFRESH, &first)], Some(json!({}))).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert!(refreshed.body.get("refresh_token").is_none());
    let second = cookie_value(&refreshed.headers, REFRESH);
    assert_ne!(first, second, "rotated");
    let again = send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[(REFRESH, &second)], None).await;
    assert_eq!(again.status, 200, "no body at all: {}", again.body);
    let me = s.get("/api/auth/me", access(&again.body)).await;
    assert_eq!((me.status, me.body["username"].as_str()), (200, Some("cleo")));

    // Without the cookie, or with a tampered one: 401, and a dead cookie is deleted.
    let none = send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[], Some(json!({}))).await;
    assert_eq!((none.status, none.code()), (401, "invalid_refresh_token"));
    let tampered = format!("{}x", cookie_value(&again.headers, REFRESH));
    let bad = send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[(REFRESH, &tampered)], None).await;
    assert_eq!((bad.status, bad.code()), (401, "invalid_refresh_token"));
    assert!(is_removal(&bad.headers, REFRESH), "{:?}", bad.headers);
}

#[tokio::test]
async fn logout_takes_the_refresh_cookie_alone_and_deletes_it() {
    let s = cookie_server(&[]).await;
    let r = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("lou")).await;
    let cookie = cookie_value(&r.headers, REFRESH);
    let access_token = access(&r.body).to_owned();

    // From another site: refused, the session lives on and the browser keeps its cookie.
    let evil = send(&s, Method::POST, "/api/auth/logout", From::Evil, &[(REFRESH, &cookie)], None).await;
    assert_eq!((evil.status, evil.code()), (403, "csrf_rejected"));
    assert!(set_cookie(&evil.headers, REFRESH).is_none(), "{:?}", evil.headers);
    let lax = send(&s, Method::POST, "/api/auth/logout", From::Evil, &[], None).await;
    assert_eq!(lax.status, 401, "a cross-site POST without the SameSite cookie");
    assert!(set_cookie(&lax.headers, REFRESH).is_none(), "{:?}", lax.headers);
    assert_eq!(s.get("/api/auth/me", &access_token).await.status, 200);

    let out = send(&s, Method::POST, "/api/auth/logout", From::SameOrigin, &[(REFRESH, &cookie)], None).await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(is_removal(&out.headers, REFRESH));
    let me = s.get("/api/auth/me", &access_token).await;
    assert_eq!((me.status, me.code()), (401, "session_revoked"));
    let refresh = send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[(REFRESH, &cookie)], None).await;
    assert_eq!(refresh.status, 401);

    // Neither an access token nor the cookie: 401 (and the cookie is cleared all the same).
    let nothing = send(&s, Method::POST, "/api/auth/logout", From::SameOrigin, &[], None).await;
    assert_eq!((nothing.status, nothing.code()), (401, "unauthorized"));
    assert!(is_removal(&nothing.headers, REFRESH));
}

#[tokio::test]
async fn a_cookie_request_from_another_site_or_without_origin_headers_is_refused_and_changes_nothing() {
    let s = cookie_server(&[]).await;
    let r = send(&s, Method::POST, "/api/auth/register", From::Allowed, &[], credentials("ines")).await;
    assert_eq!(r.status, 201, "an allowed cross-origin app may log in: {}", r.body);
    let cookie = cookie_value(&r.headers, REFRESH);

    for from in [From::Evil, From::Nowhere] {
        let refused = send(&s, Method::POST, "/api/auth/refresh", from, &[(REFRESH, &cookie)], None).await;
        assert_eq!((refused.status, refused.code()), (403, "csrf_rejected"), "{}", refused.body);
        assert!(set_cookie(&refused.headers, REFRESH).is_none(), "nothing set or cleared");
    }
    // Referer names an allowed page: accepted; the cookie was not spent by the refused tries.
    let res = s
        .request(Method::POST, "/api/auth/refresh")
        .header("Referer", format!("{APP}/account?tab=1"))
        .header("Cookie", format!("{REFRESH}={cookie}"))
        .send()
        .await;
    let ok = Resp::from(res).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Login CSRF: a foreign page cannot log the browser into an account, nor can a client that
    // sends no origin headers get a cookie-only session.
    let evil = send(&s, Method::POST, "/api/auth/login", From::Evil, &[], credentials("ines")).await;
    assert_eq!((evil.status, evil.code()), (403, "csrf_rejected"));
    assert!(set_cookie(&evil.headers, REFRESH).is_none());
    let native = send(&s, Method::POST, "/api/auth/register", From::Nowhere, &[], credentials("nat")).await;
    assert_eq!((native.status, native.code()), (403, "csrf_rejected"));
    let taken = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("nat")).await;
    assert_eq!(taken.status, 201, "the refused registration created nothing: {}", taken.body);

    // Bearer requests are not affected by the origin check.
    let out = s
        .request(Method::POST, "/api/auth/logout")
        .header("Origin", "https://evil.example")
        .bearer_auth(access(&taken.body));
    assert_eq!(out.send().await.unwrap().status(), 204);
}

#[tokio::test]
async fn the_access_token_cookie_authenticates_host_routes_and_unsafe_requests_need_the_origin_check() {
    let s = cookie_server(&[("AUTH_ACCESS_TOKEN_COOKIE", "true")]).await;
    let r = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("ada")).await;
    let line = set_cookie(&r.headers, ACCESS).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    let at = cookie_value(&r.headers, ACCESS);
    let refresh = cookie_value(&r.headers, REFRESH);

    // Safe requests need no origin check; a refresh cookie is no access token.
    let protected = send(&s, Method::GET, "/api/protected", From::Nowhere, &[(ACCESS, &at)], None).await;
    assert_eq!((protected.status, protected.body["username"].as_str()), (200, Some("ada")));
    let wrong = send(&s, Method::GET, "/api/protected", From::SameOrigin, &[(REFRESH, &refresh)], None).await;
    assert_eq!((wrong.status, wrong.code()), (401, "unauthorized"));
    let garbage = send(&s, Method::GET, "/api/protected", From::SameOrigin, &[(ACCESS, "not.a.jwt")], None).await;
    assert_eq!((garbage.status, garbage.code()), (401, "unauthorized"));

    // Unsafe requests authenticated by the cookie: only from a trusted site.
    let body = Some(json!({"theme": "dark"}));
    for from in [From::Evil, From::Nowhere] {
        let refused = send(&s, Method::PUT, "/api/auth/me/preferences", from, &[(ACCESS, &at)], body.clone()).await;
        assert_eq!((refused.status, refused.code()), (403, "csrf_rejected"));
    }
    let me = send(&s, Method::GET, "/api/auth/me", From::SameOrigin, &[(ACCESS, &at)], None).await;
    assert_eq!(me.body["preferences"]["theme"], "light", "the refused requests changed nothing: {}", me.body);
    let ok = send(&s, Method::PUT, "/api/auth/me/preferences", From::SameOrigin, &[(ACCESS, &at)], body).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Revoking one's own session through the cookie deletes both cookies.
    let sessions = send(&s, Method::GET, "/api/auth/sessions", From::SameOrigin, &[(ACCESS, &at)], None).await;
    let sid = sessions.body["sessions"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/auth/sessions/{sid}");
    let revoked = send(&s, Method::DELETE, &path, From::SameOrigin, &[(ACCESS, &at)], None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert!(is_removal(&revoked.headers, REFRESH) && is_removal(&revoked.headers, ACCESS), "{:?}", revoked.headers);
    let after = send(&s, Method::GET, "/api/protected", From::SameOrigin, &[(ACCESS, &at)], None).await;
    assert_eq!((after.status, after.code()), (401, "session_revoked"));
}

#[tokio::test]
async fn both_mode_gives_native_clients_body_tokens_and_browsers_cookies_too() {
    let s = TestServer::start_with(&[("AUTH_TOKEN_TRANSPORT", "both")]).await;
    let native = send(&s, Method::POST, "/api/auth/register", From::Nowhere, &[], credentials("nia")).await;
    assert_eq!(native.status, 201);
    assert!(native.body["refresh_token"].is_string());
    assert!(set_cookie(&native.headers, REFRESH).is_none(), "no cookie without browser headers");
    let body_refresh = s.post("/refresh", json!({"refresh_token": native.body["refresh_token"]})).await;
    assert_eq!(body_refresh.status, 200, "body refresh as ever: {}", body_refresh.body);

    let browser = send(&s, Method::POST, "/api/auth/login", From::SameOrigin, &[], credentials("nia")).await;
    assert!(browser.body["refresh_token"].is_string());
    assert_eq!(cookie_value(&browser.headers, REFRESH), browser.body["refresh_token"].as_str().unwrap());
    let evil = send(&s, Method::POST, "/api/auth/login", From::Evil, &[], credentials("nia")).await;
    assert_eq!((evil.status, evil.code()), (403, "csrf_rejected"));
}

#[tokio::test]
async fn body_mode_sets_no_cookies_and_ignores_them() {
    let s = TestServer::start().await;
    let r = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("bob")).await;
    assert!(r.body["refresh_token"].is_string(), "{}", r.body);
    assert!(r.headers.get("set-cookie").is_none());
    let refresh =
        send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[(REFRESH, "x")], Some(json!({}))).await;
    assert_eq!((refresh.status, refresh.code()), (400, "invalid_request"));
    let page = s.request(Method::GET, "/").send().await.unwrap();
    assert!(page.text().await.unwrap().contains("AUTH_TOKEN_TRANSPORT=cookie"));
}

#[test]
fn cookie_transport_with_a_seed_dialect_or_a_bad_value_refuses_to_start() {
    use auth_example_server::ServerConfig;
    let config = |vars: &'static [(&'static str, &'static str)]| {
        ServerConfig::from_lookup(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
    };
    let err = config(&[("AUTH_TOKEN_TRANSPORT", "cookie"), ("AUTH_API_DIALECT", "success")]).unwrap_err().to_string();
    assert!(err.contains("AUTH_TOKEN_TRANSPORT=cookie needs AUTH_API_DIALECT=canonical"), "{err}");
    let err = config(&[("AUTH_TOKEN_TRANSPORT", "header")]).unwrap_err().to_string();
    assert!(err.starts_with("AUTH_TOKEN_TRANSPORT: ") && err.contains("body, cookie or both"), "{err}");
    let err = config(&[("AUTH_COOKIE_SAME_SITE", "sometimes")]).unwrap_err().to_string();
    assert!(err.starts_with("AUTH_COOKIE_SAME_SITE: "), "{err}");
}

#[tokio::test]
async fn a_failing_database_keeps_the_cookie_for_the_retry() {
    // Cookie transport over a SQLite store whose pool is closed under it: refresh and logout
    // answer 503 and delete nothing, since the cookie is still good once the store is back.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let store = std::sync::Arc::new(auth_storage::SqliteStore::connect(&url).await.unwrap());
    let mut config = auth_core::AuthConfig::new(auth_e2e_tests::JWT_SECRET).unwrap();
    config.browser.token_transport = auth_core::TokenTransport::Cookie;
    let auth = auth_core::Auth::builder(config).stores(store.clone()).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    auth_e2e_tests::spawn_canonical_app(listener, auth);
    let client = reqwest::Client::new();
    let post = |path: &str, cookie: Option<&str>| {
        let mut req = client.post(format!("{base}/api/auth{path}")).header("Sec-Fetch-Site", "same-origin");
        req = match cookie {
            Some(cookie) => req.header("Cookie", format!("{REFRESH}={cookie}")),
            None => req.json(&json!({"username": "quinn", "password": PASSWORD})),
        };
        Resp::from_future(req.send())
    };
    let registered = post("/register", None).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let cookie = cookie_value(&registered.headers, REFRESH);

    store.pool().close().await;

    for path in ["/refresh", "/logout"] {
        let r = post(path, Some(&cookie)).await;
        assert_eq!((r.status, r.code()), (503, "store_unavailable"), "{path}");
        assert!(set_cookie(&r.headers, REFRESH).is_none(), "{path} keeps the cookie: {:?}", r.headers);
    }
}

#[tokio::test]
async fn a_planted_duplicate_refresh_cookie_is_never_used_and_the_users_own_survives() {
    // Cookie tossing: a sibling subdomain sets a second `__Secure-auth-refresh` with a longer
    // path, which the browser sends first.
    let s = cookie_server(&[]).await;
    let attacker = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("mallory")).await;
    let planted = cookie_value(&attacker.headers, REFRESH);
    let victim = send(&s, Method::POST, "/api/auth/register", From::SameOrigin, &[], credentials("vic")).await;
    let own = cookie_value(&victim.headers, REFRESH);
    for cookies in
        [[(REFRESH, planted.as_str()), (REFRESH, own.as_str())], [(REFRESH, own.as_str()), (REFRESH, "junk")]]
    {
        let r = send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &cookies, None).await;
        assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"), "{}", r.body);
        assert!(set_cookie(&r.headers, REFRESH).is_none(), "the user's cookie is not deleted: {:?}", r.headers);
    }
    let r = send(&s, Method::POST, "/api/auth/refresh", From::SameOrigin, &[(REFRESH, &own)], None).await;
    assert_eq!((r.status, r.body["user"]["username"].as_str()), (200, Some("vic")), "{}", r.body);
}
