//! Access tokens checked by an independent JWT implementation: PyJWT (`tests/jwt/pyjwt_interop.py`)
//! against the example server binary, once per `AUTH_JWT_ALGORITHM`.
//!
//! For EdDSA, ES256 and RS256 it proves both directions of interoperability: the server's tokens
//! verify with PyJWT using only the JWK Set fetched over HTTP (`/.well-known/jwks.json`, the same at
//! the auth mount, cacheable, without private members, each `kid` its RFC 7638 thumbprint) with
//! the RFC 9068 header (`typ: at+jwt`) and claims; tokens PyJWT signs with the server's generated
//! private key (`AUTH_DATA_DIR/jwt-<alg>.pem`) are accepted by the protected host route; and
//! forged ones are refused with 401: no or an unknown `kid`, HS256 alg confusion keyed with the
//! public key (PEM, DER, raw or JWK JSON), another key or another algorithm claiming the server's
//! `kid`, `alg: none`, a tampered payload, `typ: JWT`, another audience, and an expired token
//! (`token_expired`). For HS256 it proves that the JWK Set stays empty and the token's `kid` is
//! `hs-…`.
//!
//! Needs Python's `jwt` (PyJWT) and `cryptography` (`pip install 'pyjwt[crypto]'`; `scripts/test.sh`
//! installs them); without them the tests fail under `CI` and are skipped with a message otherwise.

mod common;

use std::time::Duration;

use common::{repo_root, Instance};

/// Whether `python3 -c 'import jwt, cryptography'` works.
async fn pyjwt_available() -> Result<(), String> {
    let import = tokio::process::Command::new("python3").args(["-c", "import jwt, cryptography"]).output().await;
    match import {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("python3 cannot import jwt and cryptography (pip install 'pyjwt[crypto]')".to_owned()),
    }
}

/// Starts the binary with `AUTH_JWT_ALGORITHM=algorithm` (its key generated in a temporary
/// `AUTH_DATA_DIR`, SQLite there, no rate limits) and runs the PyJWT script against it; passes when
/// the script exits successfully, is skipped when PyJWT is missing outside CI.
async fn pyjwt_agrees_with_the_server(algorithm: &str) {
    if let Err(missing) = pyjwt_available().await {
        assert!(std::env::var_os("CI").is_none(), "CI is set but the PyJWT test cannot run: {missing}");
        eprintln!("skipping the PyJWT {algorithm} test: {missing}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    let Instance { child: _server, base, mut log } = Instance::start(&[
        ("AUTH_JWT_ALGORITHM", algorithm),
        ("AUTH_DATA_DIR", &data_dir),
        ("AUTH_DATABASE_URL", &db),
        ("AUTH_RATE_LIMITS", "off"),
    ])
    .await;
    // Keep reading the server's log so that its pipe never fills.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    let script = repo_root().join("tests/jwt/pyjwt_interop.py");
    let mut command = tokio::process::Command::new("python3");
    command.arg(&script).args(["--base-url", &base, "--alg", algorithm]);
    if algorithm != "HS256" {
        // The key the server generated on its first start.
        let key = dir.path().join(format!("jwt-{}.pem", algorithm.to_ascii_lowercase()));
        assert!(key.exists(), "the server did not generate {}", key.display());
        command.arg("--private-key").arg(&key);
    }
    let run = command.kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("the PyJWT {algorithm} test took over 120 s"))
        .unwrap();
    drain.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "the PyJWT {algorithm} test failed ({}):\n{stdout}\n{stderr}", out.status);
}

#[tokio::test]
async fn eddsa_tokens_verify_with_pyjwt_through_the_jwks_and_pyjwt_tokens_verify_with_us() {
    pyjwt_agrees_with_the_server("EdDSA").await;
}

#[tokio::test]
async fn es256_tokens_verify_with_pyjwt_through_the_jwks_and_pyjwt_tokens_verify_with_us() {
    pyjwt_agrees_with_the_server("ES256").await;
}

#[tokio::test]
async fn rs256_tokens_verify_with_pyjwt_through_the_jwks_and_pyjwt_tokens_verify_with_us() {
    pyjwt_agrees_with_the_server("RS256").await;
}

#[tokio::test]
async fn hs256_publishes_an_empty_jwks_and_tags_tokens_with_an_hs_kid_for_pyjwt() {
    pyjwt_agrees_with_the_server("HS256").await;
}
