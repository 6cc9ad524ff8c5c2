//! The security-hardening behaviour of the `auth_core::Auth` service flows, on the memory store:
//! the atomic per-account lockout and its buckets, registration counting, recovery that an attacker cannot
//! block or use to enumerate accounts, mail that goes only where it should, bounded limiter keys,
//! and the builder's safe defaults.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::{
    async_trait, Argon2Params, Auth, AuthConfig, AuthError, CaptchaAction, CaptchaProof, CaptchaProvider, Claims,
    ConfigError, EmailMessage, MemoryMailer, RateLimitDecision, RateLimiter, RateLimits, RateRule, RequestContext,
    StoreError,
};
use auth_storage::MemoryStore;
use serde_json::{json, Value};

const PASSWORD: &str = "violet-Kettle-93-orbit";

fn config() -> AuthConfig {
    let mut config = AuthConfig::new(vec![3u8; 32]).unwrap();
    config.argon2 = Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    config.rate_limits = RateLimits::off();
    config.public_url = Some("https://app.example.com".into());
    config
}

fn req<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn ip(n: u32) -> RequestContext {
    RequestContext::new(Some(std::net::Ipv4Addr::from(0xC000_0200 + n).into()), None)
}

struct Fixture {
    auth: Auth,
    mailer: MemoryMailer,
}

fn fixture(config: AuthConfig, captcha: Option<Arc<dyn CaptchaProvider>>) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let mailer = MemoryMailer::new();
    let mut builder = Auth::builder(config).stores(store.clone()).rate_limiter(store).mailer(Arc::new(mailer.clone()));
    if let Some(captcha) = captcha {
        builder = builder.captcha(captcha);
    }
    Fixture { auth: builder.build().unwrap(), mailer }
}

impl Fixture {
    async fn register(&self, username: &str, email: &str) -> Claims {
        let tokens = self
            .auth
            .register(req(json!({"username": username, "email": email, "password": PASSWORD})), &ip(250))
            .await
            .unwrap();
        self.auth.authenticate(&tokens.access_token).await.unwrap()
    }

    async fn login(&self, identifier: Value, password: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        let mut body = identifier;
        body["password"] = json!(password);
        self.auth.login(req(body), ctx).await.map(|_| ())
    }

    /// The messages mailed so far, waiting up to 5 s for `count` of them (mail to existing
    /// accounts is sent in the background).
    async fn mails(&self, count: usize) -> Vec<EmailMessage> {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            while self.mailer.messages().len() < count {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "expected {count} mails, got {:?}", self.mailer.messages());
        self.mailer.messages()
    }
}

fn code_of(mail: &EmailMessage) -> String {
    mail.text.split_whitespace().find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit())).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_wrong_guesses_never_pass_the_lockout_threshold() {
    let mut config = config();
    config.rate_limits.login_failures_per_account = Some(RateRule::new(10, 900));
    let f = Arc::new(fixture(config, None));
    f.register("victim", "victim@example.com").await;
    let guesses: Vec<_> = (0..20)
        .map(|n| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.login(json!({"username": "victim"}), &format!("guess-{n}-xyz"), &ip(n)).await })
        })
        .collect();
    let (mut verified, mut limited) = (0, 0);
    for guess in guesses {
        match guess.await.unwrap() {
            Err(AuthError::InvalidCredentials) => verified += 1,
            Err(AuthError::RateLimited { .. }) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((verified, limited), (10, 10), "at most the threshold of guesses reach the password check");
    let right = f.login(json!({"username": "victim"}), PASSWORD, &ip(99)).await;
    assert!(matches!(right, Err(AuthError::RateLimited { .. })), "locked: {right:?}");
}

#[tokio::test]
async fn case_and_email_variants_of_an_account_share_one_lockout_bucket() {
    let mut config = config();
    config.rate_limits.login_failures_per_account = Some(RateRule::new(3, 900));
    let f = fixture(config, None);
    f.register("alice", "alice@example.com").await;
    for identifier in
        [json!({"username": "Alice"}), json!({"username": "ALICE"}), json!({"email": "ALICE@Example.com"})]
    {
        let wrong = f.login(identifier, "wrong-password-1", &ip(1)).await;
        assert!(matches!(wrong, Err(AuthError::InvalidCredentials)), "{wrong:?}");
    }
    let locked = f.login(json!({"username": "alice"}), PASSWORD, &ip(2)).await;
    assert!(matches!(locked, Err(AuthError::RateLimited { .. })), "{locked:?}");

    // An unknown account is bucketed by the folded identifier: full-width and case variants too.
    for name in ["ghost", "GHOST", "ｇｈｏｓｔ"] {
        let wrong = f.login(json!({"username": name}), "wrong-password-1", &ip(3)).await;
        assert!(matches!(wrong, Err(AuthError::InvalidCredentials)), "{name}: {wrong:?}");
    }
    let locked = f.login(json!({"username": "Ghost"}), "wrong-password-1", &ip(4)).await;
    assert!(matches!(locked, Err(AuthError::RateLimited { .. })), "{locked:?}");
}

#[tokio::test]
async fn a_successful_login_clears_the_failure_count() {
    let mut config = config();
    config.rate_limits.login_failures_per_account = Some(RateRule::new(3, 900));
    let f = fixture(config, None);
    f.register("bob", "bob@example.com").await;
    for _ in 0..2 {
        assert!(f.login(json!({"username": "bob"}), "wrong-password-1", &ip(1)).await.is_err());
    }
    f.login(json!({"username": "bob"}), PASSWORD, &ip(1)).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            f.login(json!({"username": "bob"}), "wrong-password-1", &ip(1)).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    f.login(json!({"username": "bob"}), PASSWORD, &ip(1)).await.unwrap();
}

#[tokio::test]
async fn wrong_current_passwords_count_toward_the_lockout_and_a_change_mails_a_notice() {
    let mut config = config();
    config.rate_limits.login_failures_per_account = Some(RateRule::new(3, 900));
    let f = fixture(config, None);
    let claims = f.register("carol", "Carol@Example.com").await;
    let change = |current: &str| req(json!({"current_password": current, "new_password": "an0ther-Strong-passphrase"}));
    for _ in 0..2 {
        let wrong = f.auth.change_password(&claims, change("not-my-password"), &ip(7)).await;
        assert!(matches!(wrong, Err(AuthError::CurrentPasswordInvalid)), "{wrong:?}");
    }
    // Two failed changes and one failed login use up the three attempts.
    assert!(f.login(json!({"username": "carol"}), "wrong-password-1", &ip(7)).await.is_err());
    let locked = f.auth.change_password(&claims, change(PASSWORD), &ip(7)).await;
    assert!(matches!(locked, Err(AuthError::RateLimited { .. })), "{locked:?}");

    let f = fixture(self::config(), None);
    let claims = f.register("carol", "Carol@Example.com").await;
    f.auth.change_password(&claims, change(PASSWORD), &ip(7)).await.unwrap();
    let mails = f.mails(1).await;
    assert_eq!(mails[0].to, "Carol@example.com");
    assert!(mails[0].subject.contains("changed"), "{}", mails[0].subject);
    assert!(mails[0].text.contains("192.0.2.7"), "the client IP: {}", mails[0].text);
    assert!(mails[0].text.contains("UTC"), "the time: {}", mails[0].text);
    assert!(!mails[0].text.contains("an0ther") && !mails[0].html.contains("an0ther"), "no secret in the notice");
}

#[tokio::test]
async fn a_reset_for_an_unknown_account_answers_like_a_wrong_code() {
    let f = fixture(config(), None);
    f.register("dave", "dave@example.com").await;
    let ctx = ip(1);
    let reset = |body: Value| f.auth.reset_password(req(body), &ctx);
    // A weak password is refused the same way for a known and an unknown address.
    for email in ["dave@example.com", "nobody@example.com"] {
        let weak = reset(json!({"email": email, "code": "123456", "new_password": "password1"})).await;
        assert!(matches!(weak, Err(AuthError::WeakPassword { .. })), "{email}: {weak:?}");
        let strong = reset(json!({"email": email, "code": "123456", "new_password": "an0ther-Strong-passphrase"}));
        assert!(matches!(strong.await, Err(AuthError::InvalidCode)), "{email}");
    }
    // By token: an unknown user id and a known one with a wrong secret.
    let known = f.auth.user_store().user_by_username("dave").await.unwrap().unwrap().user.id;
    for user_id in [known, uuid::Uuid::now_v7()] {
        use base64::Engine as _;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user_id.as_bytes());
        let token = format!("{id}.not-the-secret");
        let weak = reset(json!({"token": token, "new_password": "password1"})).await;
        assert!(matches!(weak, Err(AuthError::WeakPassword { .. })), "{weak:?}");
        let strong = reset(json!({"token": token, "new_password": "an0ther-Strong-passphrase"})).await;
        assert!(matches!(strong, Err(AuthError::InvalidCode)), "{strong:?}");
    }
}

/// A captcha that passes only the token `good`.
struct OnlyGood;

#[async_trait]
impl CaptchaProvider for OnlyGood {
    fn name(&self) -> &'static str {
        "turnstile"
    }
    async fn verify(&self, proof: &CaptchaProof, _: CaptchaAction, _: &RequestContext) -> Result<(), AuthError> {
        match proof.captcha_token.as_deref() {
            Some("good") => Ok(()),
            Some(_) => Err(AuthError::CaptchaInvalid),
            None => Err(AuthError::CaptchaRequired),
        }
    }
}

#[tokio::test]
async fn requests_with_garbage_captchas_do_not_use_up_a_victims_recovery() {
    let mut config = config();
    config.rate_limits.email_code_per_address = Some(RateRule::new(2, 3600));
    config.rate_limits.password_reset_per_account = Some(RateRule::new(2, 86_400));
    config.rate_limits.mail_per_ip = Some(RateRule::new(100, 3600));
    config.captcha_actions = [CaptchaAction::EmailCode, CaptchaAction::PasswordForgot].into_iter().collect();
    let f = fixture(config, Some(Arc::new(OnlyGood)));
    f.register("erin", "erin@example.com").await;
    for _ in 0..5 {
        let code = json!({"email": "erin@example.com", "purpose": "reset_password", "captcha_token": "garbage"});
        assert!(matches!(f.auth.send_email_code(req(code), &ip(66)).await, Err(AuthError::CaptchaInvalid)));
        let forgot = json!({"email": "erin@example.com", "captcha_token": "garbage"});
        assert!(matches!(f.auth.forgot_password(req(forgot), &ip(66)).await, Err(AuthError::CaptchaInvalid)));
    }
    // Wrong reset codes and tokens are not charged to the account either.
    for _ in 0..5 {
        let attempt =
            json!({"email": "erin@example.com", "code": "000000", "new_password": "an0ther-Strong-passphrase"});
        assert!(matches!(f.auth.reset_password(req(attempt), &ip(66)).await, Err(AuthError::InvalidCode)));
    }
    // Nor do failed logins touch recovery.
    assert!(f.login(json!({"username": "erin"}), "wrong-password-1", &ip(66)).await.is_err());
    let code = json!({"email": "erin@example.com", "purpose": "reset_password", "captcha_token": "good"});
    f.auth.send_email_code(req(code), &ip(1)).await.unwrap();
    let forgot = json!({"email": "erin@example.com", "captcha_token": "good"});
    f.auth.forgot_password(req(forgot), &ip(1)).await.unwrap();
    let mails = f.mails(2).await;
    let code = code_of(&mails[0]);
    let reset = json!({"email": "erin@example.com", "code": code, "new_password": "an0ther-Strong-passphrase"});
    f.auth.reset_password(req(reset), &ip(1)).await.unwrap();
}

#[tokio::test]
async fn mail_goes_only_to_the_stored_address_of_the_account() {
    let mut config = config();
    config.rate_limits.mail_per_ip = Some(RateRule::new(3, 3600));
    let f = fixture(config, None);
    f.register("frank", "Frank.Smith@Example.com").await;
    for bad in [
        "Someone<frank.smith@example.com>",
        "\"Someone\"<frank.smith@example.com>",
        "frank.smith@example.com(comment)",
        "frank.smith@example.com\r\nBcc: evil@example.org",
        "frank.smith@example.com, evil@example.org",
    ] {
        let body = json!({"email": bad, "purpose": "reset_password"});
        let refused = f.auth.send_email_code(req(body), &ip(1)).await;
        assert!(matches!(refused, Err(AuthError::InvalidRequest { .. })), "{bad:?}: {refused:?}");
        let refused = f.auth.forgot_password(req(json!({"email": bad})), &ip(1)).await;
        assert!(matches!(refused, Err(AuthError::InvalidRequest { .. })), "{bad:?}: {refused:?}");
    }
    // Typed in another case: the mail goes to the address on the account.
    let body = json!({"email": "FRANK.SMITH@example.COM", "purpose": "reset_password"});
    f.auth.send_email_code(req(body), &ip(1)).await.unwrap();
    f.auth.forgot_password(req(json!({"email": "frank.smith@EXAMPLE.com"})), &ip(1)).await.unwrap();
    let mails = f.mails(2).await;
    assert!(mails.iter().all(|m| m.to == "Frank.Smith@example.com"), "{mails:?}");
    // The per-IP rule counts mails to any address (unknown ones too): the third is the last.
    f.auth.forgot_password(req(json!({"email": "other@example.com"})), &ip(1)).await.unwrap();
    let limited = f.auth.forgot_password(req(json!({"email": "another@example.com"})), &ip(1)).await;
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "{limited:?}");
    f.auth.forgot_password(req(json!({"email": "another@example.com"})), &ip(2)).await.unwrap();
}

#[tokio::test]
async fn every_registration_attempt_counts_toward_the_per_ip_limit() {
    let mut config = config();
    config.rate_limits.register_per_ip = Some(RateRule::new(3, 86_400));
    let f = fixture(config, None);
    f.register("grace", "grace@example.com").await;
    let ctx = ip(5);
    let attempt = |body: Value| f.auth.register(req(body), &ctx);
    assert!(matches!(attempt(json!({"username": "grace", "password": PASSWORD})).await, Err(AuthError::UsernameTaken)));
    assert!(matches!(
        attempt(json!({"username": "heidi", "password": "password"})).await,
        Err(AuthError::WeakPassword { .. })
    ));
    assert!(matches!(
        attempt(json!({"username": "h", "password": PASSWORD})).await,
        Err(AuthError::InvalidRequest { .. })
    ));
    let limited = attempt(json!({"username": "heidi", "password": PASSWORD})).await;
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "{limited:?}");
}

/// A limiter that records the keys it is asked about.
#[derive(Default)]
struct KeyRecorder(Mutex<Vec<String>>);

#[async_trait]
impl RateLimiter for KeyRecorder {
    async fn check(&self, key: &str, limit: u32, _: Duration) -> Result<RateLimitDecision, StoreError> {
        self.0.lock().unwrap().push(key.to_owned());
        Ok(RateLimitDecision::Allowed { remaining: limit })
    }
    async fn peek(&self, key: &str, limit: u32, _: Duration) -> Result<RateLimitDecision, StoreError> {
        self.0.lock().unwrap().push(key.to_owned());
        Ok(RateLimitDecision::Allowed { remaining: limit })
    }
    async fn reset(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn limiter_keys_stay_short_whatever_the_client_sends() {
    let mut config = config();
    config.rate_limits = RateLimits::default();
    let keys = Arc::new(KeyRecorder::default());
    let auth = Auth::builder(config).stores(Arc::new(MemoryStore::new())).rate_limiter(keys.clone()).build().unwrap();
    let long = "x".repeat(10_000);
    let login = auth.login(req(json!({"username": long, "password": "whatever-password"})), &ip(1)).await;
    assert!(matches!(login, Err(AuthError::InvalidCredentials)), "{login:?}");
    let seen = keys.0.lock().unwrap().clone();
    assert!(seen.iter().any(|k| k.starts_with("rl:login_failures_per_account:#")), "hashed: {seen:?}");
    assert!(seen.iter().all(|k| k.len() <= 100), "{seen:?}");
    // IPv6 clients are counted per /64.
    let v6 = RequestContext::new(Some("2001:db8:1:2:3:4:5:6".parse().unwrap()), None);
    let _ = auth.login(req(json!({"username": "someone", "password": "whatever-password"})), &v6).await;
    assert!(keys.0.lock().unwrap().contains(&"rl:login_per_ip:2001:db8:1:2::/64".to_owned()));
}

#[tokio::test]
async fn rate_limits_are_on_without_a_limiter_unless_turned_off() {
    let mut config = config();
    config.rate_limits = RateLimits::default();
    let auth = Auth::builder(config).stores(Arc::new(MemoryStore::new())).build().unwrap();
    assert!(auth.captcha_status().login_rate_limit_enabled);
    let ctx = ip(9);
    for _ in 0..5 {
        let r = auth.login(req(json!({"username": "nobody", "password": "whatever-password"})), &ctx).await;
        assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    }
    let r = auth.login(req(json!({"username": "nobody2", "password": "whatever-password"})), &ctx).await;
    assert!(matches!(r, Err(AuthError::RateLimited { .. })), "the default 5/min per IP: {r:?}");

    let off = Auth::builder(self::config()).stores(Arc::new(MemoryStore::new())).build().unwrap();
    assert!(!off.captcha_status().login_rate_limit_enabled);
}

#[tokio::test]
async fn unsafe_or_incomplete_mail_setups_fail_at_build() {
    let store = Arc::new(MemoryStore::new());
    let mut needs_mail = config();
    needs_mail.require_email_verification = true;
    let err = Auth::builder(needs_mail).stores(store.clone()).build().unwrap_err();
    assert!(matches!(err, ConfigError::MissingMailer(_)), "{err}");
    assert!(err.to_string().contains("mailer"), "{err}");

    let mut no_url = config();
    no_url.public_url = None;
    let err = Auth::builder(no_url).stores(store.clone()).mailer(Arc::new(MemoryMailer::new())).build().unwrap_err();
    assert!(matches!(err, ConfigError::MissingPublicUrl), "{err}");
    assert!(err.to_string().contains("public_url"), "{err}");

    // Without a mailer the email flows are off, not logging codes somewhere.
    let auth = Auth::builder(config()).stores(store).build().unwrap();
    assert!(auth.mailer().is_none());
    let code = auth.send_email_code(req(json!({"email": "a@example.com", "purpose": "register"})), &ip(1)).await;
    assert!(matches!(code, Err(AuthError::NotFound)), "{code:?}");
    let forgot = auth.forgot_password(req(json!({"email": "a@example.com"})), &ip(1)).await;
    assert!(matches!(forgot, Err(AuthError::NotFound)), "{forgot:?}");
}
