//! Signing keys over HTTP: every access token names its key (`kid`); `EdDSA`, `ES256` and `RS256`
//! keys are published at `/.well-known/jwks.json` (HS256 ones never); a key rotation across two
//! instances whose keys are in different states logs nobody out; forged tokens (algorithm
//! confusion, unknown or missing `kid`, a retired key) are refused; token introspection
//! (RFC 7662) answers for live sessions only; a bad key file stops the server at startup with a
//! message naming the file.

use std::path::{Path, PathBuf};

use auth_core::keys::{JwtAlgorithm, JwtKey};
use auth_e2e_tests::{access, refresh, Resp, TestServer};
use auth_example_server::ServerConfig;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{json, Value};

const CLIENT_ID: &str = "orders-service";
const CLIENT_SECRET: &str = "introspection-secret-0123456789-abcdefgh";

/// The JSON header of a JWT.
fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// A new private key of `alg` written to `dir/name`, with its kid.
fn key_file(dir: &Path, name: &str, alg: JwtAlgorithm) -> (PathBuf, String) {
    let (key, pem) = JwtKey::generate(alg).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem.expose()).unwrap();
    (path, key.kid().to_owned())
}

async fn jwks(s: &TestServer, path: &str) -> Resp {
    Resp::from(s.request(Method::GET, path).send().await).await
}

#[tokio::test]
async fn asymmetric_tokens_name_the_published_key_and_hs256_publishes_nothing() {
    let s = TestServer::start().await;
    let tokens = s.register("hilda").await;
    let header = header_of(access(&tokens));
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].as_str().unwrap().starts_with("hs-"), "{header}");
    for path in ["/.well-known/jwks.json", "/api/auth/.well-known/jwks.json"] {
        let r = jwks(&s, path).await;
        assert_eq!((r.status, &r.body), (200, &json!({"keys": []})), "{path}: the HS256 secret is never published");
    }

    for alg in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256, JwtAlgorithm::Rs256] {
        let s = TestServer::start_with(&[("AUTH_JWT_ALGORITHM", alg.name())]).await;
        let tokens = s.register("ines").await;
        let header = header_of(access(&tokens));
        assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some(alg.name()), Some("at+jwt")));
        let root = jwks(&s, "/.well-known/jwks.json").await;
        let mounted = jwks(&s, "/api/auth/.well-known/jwks.json").await;
        assert_eq!(root.body, mounted.body);
        assert_eq!(root.headers["cache-control"], "public, max-age=600");
        let keys = root.body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{alg}");
        let jwk = &keys[0];
        assert_eq!((&jwk["kid"], &jwk["alg"], &jwk["use"]), (&header["kid"], &json!(alg.name()), &json!("sig")));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(jwk.get(private).is_none(), "{alg}: {private} published: {jwk}");
        }
        // The published key alone verifies the token (jsonwebtoken, as a resource server would).
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(alg.name().parse::<Algorithm>().unwrap());
        validation.set_audience(&["api"]);
        validation.set_issuer(&["auth"]);
        let data = jsonwebtoken::decode::<Value>(access(&tokens), &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], tokens["user"]["id"]);
        assert_eq!(s.get("/api/protected", access(&tokens)).await.status, 200);
        // The generated key was kept in the data directory, readable by its owner only.
        let file = s.dir.path().join(format!("jwt-{}.pem", alg.name().to_ascii_lowercase()));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_generated_key_file_that_others_could_read_or_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("AUTH_JWT_ALGORITHM", "EdDSA")];
    let (path, _) = key_file(dir.path(), "jwt-eddsa.pem", JwtAlgorithm::EdDsa);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let message = key_error(dir.path(), &vars);
    assert!(message.contains("has mode 644") && message.contains("chmod 600"), "{message}");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let lookup = |name: &str| match name {
        "AUTH_JWT_ALGORITHM" => Some("EdDSA".to_owned()),
        "AUTH_DATA_DIR" => Some(dir.path().display().to_string()),
        _ => None,
    };
    assert!(ServerConfig::from_lookup(lookup).unwrap().signing_keys().is_ok(), "mode 600 is fine");
    // A symlink (here dangling: it used to make the generator loop) is refused, never followed.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere.pem"), &path).unwrap();
    let message = key_error(dir.path(), &vars);
    assert!(message.contains("not a regular file"), "{message}");
    assert!(!dir.path().join("elsewhere.pem").exists());
}

#[tokio::test]
async fn a_generated_key_survives_a_restart_so_nobody_is_logged_out() {
    let s = TestServer::start_with(&[("AUTH_JWT_ALGORITHM", "EdDSA")]).await;
    let tokens = s.register("ottilie").await;
    let kid = header_of(access(&tokens))["kid"].clone();
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, &[("AUTH_JWT_ALGORITHM", "EdDSA"), ("AUTH_JWKS_MAX_AGE", "120")]).await;
    assert_eq!(s.get("/api/protected", access(&tokens)).await.status, 200, "the access token of before the restart");
    let r = jwks(&s, "/.well-known/jwks.json").await;
    assert_eq!(r.body["keys"][0]["kid"], kid);
    assert_eq!(r.headers["cache-control"], "public, max-age=120");
}

/// An instance on the shared database `db` signing with `signer` and also accepting `previous`.
async fn instance(db: &str, signer: &Path, previous: &[&Path]) -> TestServer {
    let previous = previous.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",");
    TestServer::start_with(&[
        ("AUTH_DATABASE_URL", db),
        ("AUTH_JWT_ALGORITHM", "EdDSA"),
        ("AUTH_JWT_PRIVATE_KEY_FILE", &signer.display().to_string()),
        ("AUTH_JWT_PREVIOUS_KEY_FILES", &previous),
    ])
    .await
}

#[tokio::test]
async fn a_key_rotation_across_two_instances_in_different_states_logs_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (old, old_kid) = key_file(dir.path(), "old.pem", JwtAlgorithm::EdDsa);
    let (new, new_kid) = key_file(dir.path(), "new.pem", JwtAlgorithm::EdDsa);

    // Before: both instances sign with the old key.
    let a = instance(&db, &old, &[]).await;
    let before = a.register("rosa").await;
    assert_eq!(header_of(access(&before))["kid"], old_kid.as_str());

    // Step 1, rolling: `a` already accepts the new key, `b` is not updated yet.
    let a = {
        a.stop().await;
        instance(&db, &old, &[&new]).await
    };
    let b = instance(&db, &old, &[]).await;
    assert_eq!(b.get("/api/protected", access(&before)).await.status, 200);
    let keys = jwks(&a, "/.well-known/jwks.json").await.body["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 2, "the next key is published before it signs: {keys}");

    // Step 2, rolling: `a` signs with the new key (the old one verify-only) while `b` is in the
    // state of step 1. Each accepts the other's tokens.
    let (a, b) = {
        a.stop().await;
        b.stop().await;
        (instance(&db, &new, &[&old]).await, instance(&db, &old, &[&new]).await)
    };
    let from_a = a.login("rosa").await;
    let from_b = b.login("rosa").await;
    assert_eq!(header_of(access(&from_a))["kid"], new_kid.as_str());
    assert_eq!(header_of(access(&from_b))["kid"], old_kid.as_str());
    for (server, token, what) in [
        (&b, access(&from_a), "a new-key token on the instance still signing with the old key"),
        (&a, access(&from_b), "an old-key token on the instance signing with the new key"),
        (&a, access(&before), "a token from before the rotation"),
        (&b, access(&before), "a token from before the rotation"),
    ] {
        assert_eq!(server.get("/api/protected", token).await.status, 200, "{what}");
    }
    // Skipping step 1 is what logs people out: an instance that never heard of the new key
    // refuses its tokens. (Shown here so that the procedure's first step stays necessary.)
    let stale = instance(&db, &old, &[]).await;
    let r = stale.get("/api/protected", access(&from_a)).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));

    // Step 3, after the longest access-token lifetime: the old key is retired everywhere. Its
    // tokens are refused (they have expired by now anyway); the sessions live on, and their
    // refresh tokens, opaque and stored, get new-key access tokens.
    let (a, b) = {
        a.stop().await;
        b.stop().await;
        (instance(&db, &new, &[]).await, instance(&db, &new, &[]).await)
    };
    assert_eq!(jwks(&b, "/.well-known/jwks.json").await.body["keys"].as_array().unwrap().len(), 1);
    let r = b.get("/api/protected", access(&from_b)).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"), "a retired key's token");
    assert_eq!(a.get("/api/protected", access(&from_a)).await.status, 200);
    for tokens in [&before, &from_b] {
        let r = b.post("/refresh", json!({"refresh_token": refresh(tokens)})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(header_of(access(&r.body))["kid"], new_kid.as_str());
        assert_eq!(a.get("/api/protected", access(&r.body)).await.status, 200);
    }
}

/// A JWT with exactly `header` and `claims`, signed with `alg` and `key`.
fn sign(header: &Value, claims: &Value, alg: Algorithm, key: &EncodingKey) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", b64(header), b64(claims));
    format!("{message}.{}", jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap())
}

#[tokio::test]
async fn algorithm_confusion_unknown_missing_or_foreign_kids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pem_path, kid) = key_file(dir.path(), "signer.pem", JwtAlgorithm::Rs256);
    let pem = std::fs::read(&pem_path).unwrap();
    let s = TestServer::start_with(&[
        ("AUTH_JWT_ALGORITHM", "RS256"),
        ("AUTH_JWT_PRIVATE_KEY_FILE", &pem_path.display().to_string()),
    ])
    .await;
    let tokens = s.register("vera").await;
    let claims = auth_e2e_tests::claims(access(&tokens));
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    // The control: our own key, our kid, our header: accepted.
    let control = sign(&json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}), &claims, Algorithm::RS256, &key);
    assert_eq!(s.get("/api/protected", &control).await.status, 200);

    let published = jwks(&s, "/.well-known/jwks.json").await.body["keys"][0].clone();
    let public_pem = {
        let public = JwtKey::from_jwk(&serde_json::from_value(published.clone()).unwrap()).unwrap();
        serde_json::to_vec(public.public_jwk().unwrap()).unwrap()
    };
    let other =
        EncodingKey::from_rsa_pem(JwtKey::generate(JwtAlgorithm::Rs256).unwrap().1.expose().as_bytes()).unwrap();
    let forged = [
        // RS/HS confusion: HMAC keyed with what is public, under the RSA key's kid.
        (
            sign(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                &claims,
                Algorithm::HS256,
                &EncodingKey::from_secret(&public_pem),
            ),
            "HS256 with the public JWK as secret",
        ),
        (
            sign(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                &claims,
                Algorithm::HS256,
                &EncodingKey::from_secret(published["n"].as_str().unwrap().as_bytes()),
            ),
            "HS256 with the modulus as secret",
        ),
        (sign(&json!({"alg": "RS256", "typ": "at+jwt"}), &claims, Algorithm::RS256, &key), "no kid"),
        (
            sign(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "unknown"}), &claims, Algorithm::RS256, &key),
            "unknown kid",
        ),
        (
            sign(&json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}), &claims, Algorithm::RS256, &other),
            "another key, our kid",
        ),
        (
            sign(&json!({"alg": "PS256", "typ": "at+jwt", "kid": kid}), &claims, Algorithm::PS256, &key),
            "our key, PS256",
        ),
    ];
    for (token, what) in &forged {
        for path in ["/api/protected", "/api/auth/me"] {
            let r = s.get(path, token).await;
            assert_eq!((r.status, r.code()), (401, "unauthorized"), "{what} on {path}");
        }
    }
}

async fn introspect(s: &TestServer, credentials: Option<(&str, &str)>, form: &[(&str, &str)]) -> Resp {
    let mut req = s.request(Method::POST, "/api/auth/introspect").form(form);
    if let Some((id, secret)) = credentials {
        req = req.basic_auth(id, Some(secret));
    }
    Resp::from(req.send().await).await
}

#[tokio::test]
async fn introspection_answers_active_for_live_sessions_only_and_only_to_its_client() {
    let s = TestServer::start_with(&[
        ("AUTH_JWT_ALGORITHM", "ES256"),
        ("AUTH_INTROSPECTION_CLIENT_ID", CLIENT_ID),
        ("AUTH_INTROSPECTION_SECRET", CLIENT_SECRET),
    ])
    .await;
    let tokens = s.register("edda").await;
    let token = access(&tokens);
    let me = Some((CLIENT_ID, CLIENT_SECRET));

    let r = introspect(&s, None, &[("token", token)]).await;
    assert_eq!((r.status, r.body["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(r.headers["www-authenticate"], r#"Basic realm="introspection", charset="UTF-8""#);
    for (id, secret) in [(CLIENT_ID, "introspection-secret-0123456789-abcdefgX"), ("other", CLIENT_SECRET)] {
        assert_eq!(introspect(&s, Some((id, secret)), &[("token", token)]).await.status, 401, "{id}");
    }
    // A bearer token is no client credential.
    let r = Resp::from(
        s.request(Method::POST, "/api/auth/introspect").bearer_auth(token).form(&[("token", token)]).send().await,
    )
    .await;
    assert_eq!(r.status, 401);

    let r = introspect(&s, me, &[("token", token), ("token_type_hint", "access_token")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let claims = auth_e2e_tests::claims(token);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["token_type"], "Bearer");
    for claim in ["sub", "sid", "role", "exp", "iat", "nbf", "iss", "aud", "jti", "amr"] {
        assert_eq!(r.body[claim], claims[claim], "{claim}");
    }

    let inactive = json!({"active": false});
    for (what, form) in
        [("a refresh token", vec![("token", refresh(&tokens))]), ("garbage", vec![("token", "not-a-token")])]
    {
        let r = introspect(&s, me, &form).await;
        assert_eq!((r.status, &r.body), (200, &inactive), "{what}");
    }
    let r = introspect(&s, me, &[("nothing", "here")]).await;
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")));
    let r = Resp::from(
        s.request(Method::POST, "/api/auth/introspect")
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&json!({"token": token}))
            .send()
            .await,
    )
    .await;
    assert_eq!((r.status, r.body["error"].as_str()), (415, Some("invalid_request")), "RFC 7662 asks for a form");

    // Revoked: not active, at once, though the token itself still verifies.
    assert_eq!(s.call(Method::POST, "/api/auth/logout", token, None).await.status, 204);
    assert_eq!(introspect(&s, me, &[("token", token)]).await.body, inactive);
    // Expired: not active from `exp` on, without the leeway the auth server itself allows (the
    // clock moved, not a sleep).
    let again = s.login("edda").await;
    assert_eq!(introspect(&s, me, &[("token", access(&again))]).await.body["active"], true);
    s.clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(s.get("/api/protected", access(&again)).await.status, 200, "within the leeway");
    assert_eq!(introspect(&s, me, &[("token", access(&again))]).await.body, inactive);

    // Without a configured client the route does not exist.
    let plain = TestServer::start().await;
    let r = introspect(&plain, me, &[("token", token)]).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn failed_introspection_client_authentication_is_rate_limited_but_the_client_never_is() {
    let s = TestServer::start_with(&[
        ("AUTH_RATE_LIMITS", "default"),
        ("AUTH_RATE_LIMIT_OTHER", "3/60"),
        ("AUTH_INTROSPECTION_CLIENT_ID", CLIENT_ID),
        ("AUTH_INTROSPECTION_SECRET", CLIENT_SECRET),
    ])
    .await;
    let tokens = s.register("tilda").await;
    let me = Some((CLIENT_ID, CLIENT_SECRET));
    // The resource server introspects every request: more than the per-IP rule's 3 a minute.
    for _ in 0..10 {
        assert_eq!(introspect(&s, me, &[("token", access(&tokens))]).await.body["active"], true);
    }
    let wrong = Some((CLIENT_ID, "a-wrong-secret-of-enough-length-0123456789"));
    for _ in 0..3 {
        assert_eq!(introspect(&s, wrong, &[("token", access(&tokens))]).await.status, 401);
    }
    let r = introspect(&s, wrong, &[("token", access(&tokens))]).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(introspect(&s, me, &[("token", access(&tokens))]).await.body["active"], true);
}

/// The configuration of `vars` (and a data directory), and the error of building its key set.
fn key_error(dir: &Path, vars: &[(&str, &str)]) -> String {
    let data_dir = dir.display().to_string();
    let lookup = |name: &str| {
        if name == "AUTH_DATA_DIR" {
            return Some(data_dir.clone());
        }
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    };
    match ServerConfig::from_lookup(lookup) {
        Err(err) => format!("{err:#}"),
        Ok(config) => format!("{:#}", config.signing_keys().expect_err("a bad key set must be refused")),
    }
}

#[tokio::test]
async fn bad_key_settings_are_refused_at_startup_naming_the_variable_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("garbage.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let (ed, _) = key_file(dir.path(), "ed.pem", JwtAlgorithm::EdDsa);
    let ed = ed.display().to_string();
    let public = {
        let key = JwtKey::from_pem(JwtAlgorithm::EdDsa, &std::fs::read(&ed).unwrap()).unwrap();
        let x = key.public_jwk().map(|j| serde_json::to_value(j).unwrap()["x"].as_str().unwrap().to_owned()).unwrap();
        // SPKI of an Ed25519 key: the fixed 12-byte prefix (RFC 8410) and the raw key.
        let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        der.extend(URL_SAFE_NO_PAD.decode(x).unwrap());
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
    };
    std::fs::write(path("public.pem"), public).unwrap();
    /// The variables set, and what the message must say.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 8] = [
        (&[("AUTH_JWT_ALGORITHM", "RS512")], &["AUTH_JWT_ALGORITHM", "RS512"]),
        (&[("AUTH_JWT_PRIVATE_KEY_FILE", &ed)], &["AUTH_JWT_ALGORITHM=EdDSA, ES256 or RS256"]),
        (
            &[("AUTH_JWT_ALGORITHM", "EdDSA"), ("AUTH_JWT_PRIVATE_KEY_FILE", &path("missing.pem"))],
            &["AUTH_JWT_PRIVATE_KEY_FILE", "missing.pem", "cannot be read"],
        ),
        (
            &[("AUTH_JWT_ALGORITHM", "EdDSA"), ("AUTH_JWT_PRIVATE_KEY_FILE", &path("garbage.pem"))],
            &["AUTH_JWT_PRIVATE_KEY_FILE", "garbage.pem", "not a PEM EdDSA key"],
        ),
        (
            &[("AUTH_JWT_ALGORITHM", "ES256"), ("AUTH_JWT_PRIVATE_KEY_FILE", &ed)],
            &["AUTH_JWT_PRIVATE_KEY_FILE", "ed.pem", "not a PEM ES256 key"],
        ),
        (
            &[("AUTH_JWT_ALGORITHM", "EdDSA"), ("AUTH_JWT_PRIVATE_KEY_FILE", &path("public.pem"))],
            &["AUTH_JWT_PRIVATE_KEY_FILE", "public.pem", "holds a public key"],
        ),
        (
            &[
                ("AUTH_JWT_ALGORITHM", "EdDSA"),
                ("AUTH_JWT_PRIVATE_KEY_FILE", &ed),
                ("AUTH_JWT_PREVIOUS_KEY_FILES", &format!("{},{}", path("public.pem"), path("garbage.pem"))),
            ],
            &["AUTH_JWT_PREVIOUS_KEY_FILES", "garbage.pem"],
        ),
        (
            &[("AUTH_INTROSPECTION_CLIENT_ID", CLIENT_ID), ("AUTH_JWT_ALGORITHM", "EdDSA")],
            &["AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_SECRET go together"],
        ),
    ];
    for (vars, expected) in cases {
        let message = key_error(dir.path(), vars);
        for part in expected {
            assert!(message.contains(part), "{vars:?}: {message:?} lacks {part:?}");
        }
    }
    // The key pasted where its path goes: refused, and not echoed.
    let pem = std::fs::read_to_string(&ed).unwrap();
    for name in ["AUTH_JWT_PRIVATE_KEY_FILE", "AUTH_JWT_PREVIOUS_KEY_FILES"] {
        let message = key_error(dir.path(), &[("AUTH_JWT_ALGORITHM", "EdDSA"), (name, &pem)]);
        assert!(message.contains("not the key itself"), "{message}");
        assert!(!message.contains(pem.lines().nth(1).unwrap()), "the key is echoed: {message}");
    }
    // A public key is fine as a previous key.
    let lookup = |name: &str| match name {
        "AUTH_JWT_ALGORITHM" => Some("EdDSA".to_owned()),
        "AUTH_JWT_PRIVATE_KEY_FILE" => {
            Some(key_file(dir.path(), "next.pem", JwtAlgorithm::EdDsa).0.display().to_string())
        }
        "AUTH_JWT_PREVIOUS_KEY_FILES" => Some(path("public.pem")),
        _ => None,
    };
    let set = ServerConfig::from_lookup(lookup).unwrap().signing_keys().unwrap().unwrap();
    assert_eq!(set.keys().count(), 2);
    assert_eq!(set.jwks().keys.len(), 2);
}
