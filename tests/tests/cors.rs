//! Cross-origin access over HTTP (`AUTH_ALLOWED_ORIGINS`): preflights answered for the allowed
//! origins only, with credentials, the API's headers and a cached preflight; no CORS headers for
//! other origins or without the setting; wildcards refused at startup.

use auth_e2e_tests::{access, Resp, TestServer};
use reqwest::Method;
use serde_json::json;

const APP: &str = "https://app.example.com";

async fn preflight(s: &TestServer, path: &str, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    s.request(Method::OPTIONS, path)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn an_allowed_origin_gets_a_credentialed_preflight_with_the_apis_headers() {
    let s =
        TestServer::start_with(&[("AUTH_ALLOWED_ORIGINS", "https://App.example.com:443, http://localhost:5173")]).await;
    for path in ["/api/auth/login", "/api/auth/admin/users/x", "/api/protected"] {
        let res = preflight(&s, path, APP, "POST", "content-type,authorization,x-mfa-code").await;
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(header(&res, "access-control-allow-origin"), Some(APP), "{path}");
        assert_eq!(header(&res, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(&res, "access-control-max-age"), Some("600"));
        let allowed = header(&res, "access-control-allow-headers").unwrap().to_ascii_lowercase();
        for name in ["authorization", "content-type", "x-mfa-code"] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert!(header(&res, "access-control-allow-methods").unwrap().contains("DELETE"));
    }
    let res = preflight(&s, "/api/auth/login", "http://localhost:5173", "POST", "content-type").await;
    assert_eq!(header(&res, "access-control-allow-origin"), Some("http://localhost:5173"));

    // The actual request: the origin is echoed, scripts may read Retry-After and friends.
    let r = s.request(Method::POST, "/api/auth/register").header("Origin", APP).json(&json!({
        "username": "cora", "password": auth_e2e_tests::PASSWORD
    }));
    let res = r.send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(res.headers().get_all("access-control-allow-origin").iter().count(), 1, "one CORS policy answers");
    assert_eq!(header(&res, "vary").map(|v| v.to_ascii_lowercase().contains("origin")), Some(true));
    assert!(header(&res, "access-control-expose-headers").unwrap().to_ascii_lowercase().contains("retry-after"));
    let tokens = Resp::from(Ok(res)).await.body;
    let me = s.request(Method::GET, "/api/protected").header("Origin", APP).bearer_auth(access(&tokens));
    let res = me.send().await.unwrap();
    assert_eq!((res.status().as_u16(), header(&res, "access-control-allow-origin")), (200, Some(APP)));
    assert_eq!(res.headers().get_all("access-control-allow-origin").iter().count(), 1);
}

#[tokio::test]
async fn other_origins_and_servers_without_the_setting_get_no_cors_headers() {
    let s = TestServer::start_with(&[("AUTH_ALLOWED_ORIGINS", APP)]).await;
    for origin in ["https://evil.example", "https://app.example.com.evil.example", "null", "http://app.example.com"] {
        let res = preflight(&s, "/api/auth/login", origin, "POST", "content-type").await;
        assert_eq!(header(&res, "access-control-allow-origin"), None, "{origin}");
        let res = s.request(Method::POST, "/api/auth/login").header("Origin", origin).json(&json!({})).send();
        let res = res.await.unwrap();
        assert_eq!(res.status(), 400, "the request itself is the API's business, never a 5xx");
        assert_eq!(header(&res, "access-control-allow-origin"), None, "{origin}: the browser hides the answer");
    }
    let plain = TestServer::start().await;
    let res = preflight(&plain, "/api/auth/login", APP, "POST", "content-type").await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "access-control-allow-credentials"), None, "no CORS policy at all by default");
}

#[test]
fn a_wildcard_or_a_path_in_allowed_origins_refuses_to_start() {
    use auth_example_server::ServerConfig;
    for bad in ["*", "https://*.example.com", "https://app.example.com/", "app.example.com"] {
        let err = ServerConfig::from_lookup(|n| (n == "AUTH_ALLOWED_ORIGINS").then(|| bad.to_owned())).unwrap_err();
        let err = err.to_string();
        assert!(err.starts_with("AUTH_ALLOWED_ORIGINS: ") && err.contains("is not an origin"), "{bad}: {err}");
    }
}
