//! The second factor: TOTP enrollment and confirmation, recovery codes, the second step of a
//! login, and step-up for sensitive actions. The rules (code window, replay, challenge life) are
//! in [`crate::mfa`]; the store makes each use single, atomically.

use std::sync::Arc;

use chrono::TimeDelta;
use uuid::Uuid;

use crate::audit::AuditEventType;
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::input::{MfaConfirmRequest, MfaLoginRequest, TotpConfirmRequest, TotpEnrollRequest};
use crate::mail::{MailKind, SecondFactorChange};
use crate::mfa::{
    self, ChallengeOutcome, ChallengePurpose, FactorUse, MfaChallenge, MfaStore, TotpFactor, CHALLENGE_TTL_SECONDS,
    ENROLLMENT_TTL_SECONDS, RECOVERY_CODE_COUNT,
};
use crate::outcome::{IssuedTokens, LoginOutcome, MfaStatus, SecondFactorChallenge, TotpConfirmation, TotpEnrollment};
use crate::secret::{random_token, SecretString, TokenHash};
use crate::store::AuthMethod;
use crate::token::Claims;
use crate::user::{Role, User, UserRecord, UserStatus};

use super::Auth;

/// Longest `mfa_token` accepted for lookup, in bytes (ours are 43).
const MAX_MFA_TOKEN_LEN: usize = 256;

/// How long a started enrollment may wait for its confirming code.
pub(super) fn enrollment_window() -> TimeDelta {
    TimeDelta::seconds(ENROLLMENT_TTL_SECONDS as i64)
}

/// Which step a login takes after the password: a code, or an enrollment first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecondStep {
    Code,
    Enroll,
}

impl Auth {
    /// The second-factor store, or `not_found` when the second factor is off.
    fn mfa(&self) -> Result<&Arc<dyn MfaStore>, AuthError> {
        self.inner.mfa.as_ref().ok_or(AuthError::NotFound)
    }

    /// The user's active TOTP factor; `None` without one or without a second-factor store.
    pub(super) async fn active_factor(&self, user_id: Uuid) -> Result<Option<TotpFactor>, AuthError> {
        match &self.inner.mfa {
            Some(store) => Ok(store.totp_factor(user_id).await?.filter(TotpFactor::is_active)),
            None => Ok(None),
        }
    }

    /// Whether users of `role` must have a factor ([`MfaConfig::required_for_roles`]).
    ///
    /// [`MfaConfig::required_for_roles`]: crate::MfaConfig::required_for_roles
    fn factor_required(&self, role: &Role) -> bool {
        self.inner.mfa.is_some() && self.inner.config.mfa.required_for_roles.contains(role.as_str())
    }

    /// What a login whose password was right must do before it gets a session: `None` (nothing),
    /// a code (the user has a factor), or an enrollment (the role requires a factor).
    pub(super) async fn second_step(&self, user: &User) -> Result<Option<SecondStep>, AuthError> {
        if self.active_factor(user.id).await?.is_some() {
            Ok(Some(SecondStep::Code))
        } else if self.factor_required(&user.role) {
            Ok(Some(SecondStep::Enroll))
        } else {
            Ok(None)
        }
    }

    /// Issues the challenge of `step` for `user`, whose password (PHC string `password_hash`)
    /// was just verified: an opaque single-use token, stored by hash, bound to the user and to
    /// that password. Audited `login_password_ok_mfa_pending`.
    pub(super) async fn issue_challenge(
        &self,
        user: &User,
        step: SecondStep,
        password_hash: &str,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AuthError> {
        let store = self.mfa()?;
        let (purpose, ttl, methods) = match step {
            SecondStep::Code => (ChallengePurpose::Login, CHALLENGE_TTL_SECONDS, vec!["totp", "recovery_code"]),
            SecondStep::Enroll => (ChallengePurpose::Enroll, ENROLLMENT_TTL_SECONDS, vec!["totp"]),
        };
        let token = random_token();
        let at = self.now();
        store
            .create_challenge(MfaChallenge {
                token_hash: TokenHash::of(&token),
                user_id: user.id,
                purpose,
                password_fingerprint: TokenHash::of(password_hash),
                verified_at: at,
                expires_at: mfa::expiry(at, ttl),
                attempts: 0,
            })
            .await?;
        self.audit(AuditEventType::LoginPasswordOkMfaPending, Some(user.id), ctx)
            .detail("purpose", purpose.as_str())
            .record()
            .await?;
        let challenge = SecondFactorChallenge::new(token, methods, ttl);
        Ok(match step {
            SecondStep::Code => LoginOutcome::SecondFactorRequired(challenge),
            SecondStep::Enroll => LoginOutcome::EnrollmentRequired(challenge),
        })
    }

    /// `POST /login/mfa`: the second step of a password login. `mfa_token` is the challenge the
    /// password step answered; `code` a TOTP code or `recovery_code` a recovery code (either
    /// field takes either kind). The session is made with [`AuthMethod::PasswordAndOtp`]
    /// (`amr: ["pwd","otp"]`).
    ///
    /// The challenge lives [`CHALLENGE_TTL_SECONDS`] from the password check, is spent by the
    /// right code, and dies after [`mfa::CHALLENGE_MAX_ATTEMPTS`] wrong ones, or when the
    /// password changed, the account was disabled or its factor removed since. Every code first
    /// takes a slot of `mfa_failures_per_account` and of the account lockout; a right one clears
    /// both. A TOTP step is accepted once ever; a recovery code is spent and its use mailed.
    ///
    /// # Errors
    /// `invalid_mfa_token` (401), `invalid_mfa_code` (400, `details.attempts_left`),
    /// `invalid_request` (no code, or both fields), `account_disabled`, `rate_limited`,
    /// `invalid_credentials` (the password changed while the session was being created),
    /// `not_found` (second factor off), `internal` (no configured key opens the sealed secret),
    /// `store_unavailable`.
    pub async fn login_second_factor(
        &self,
        req: MfaLoginRequest,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        let store = self.mfa()?.clone();
        let code = match (&req.code, &req.recovery_code) {
            (Some(code), None) | (None, Some(code)) => code,
            (Some(_), Some(_)) => return Err(AuthError::invalid_field("code", "send code or recovery_code, not both")),
            (None, None) => return Err(AuthError::invalid_field("code", "a code or a recovery_code is required")),
        };
        let token_hash = challenge_hash(&req.mfa_token)?;
        let at = self.now();
        let challenge =
            store.challenge(&token_hash, ChallengePurpose::Login, at).await?.ok_or(AuthError::InvalidMfaToken)?;
        let user_id = challenge.user_id;
        self.take_mfa_attempt(user_id, ctx).await?;
        let record = self.challenged_user(&challenge).await?;
        let factor = self.active_factor(user_id).await?.ok_or(AuthError::InvalidMfaToken)?;
        let (factor_use, resealed) = self.factor_use(&factor, code)?;
        let recovery = matches!(factor_use, FactorUse::RecoveryCode(_));
        match store.redeem_challenge(&token_hash, ChallengePurpose::Login, factor_use, at).await? {
            ChallengeOutcome::Redeemed(_) => {}
            ChallengeOutcome::Rejected { attempts_left } => {
                self.audit(AuditEventType::MfaFailed, Some(user_id), ctx)
                    .failed()
                    .detail("context", "login")
                    .detail("attempts_left", attempts_left)
                    .record()
                    .await?;
                return Err(AuthError::InvalidMfaCode { attempts_left: Some(attempts_left) });
            }
            ChallengeOutcome::Dead => return Err(AuthError::InvalidMfaToken),
        }
        self.clear_mfa_attempts(user_id).await?;
        self.after_factor_use(&record.user, &factor, recovery, resealed, ctx).await?;
        self.finish_login(record, None, AuthMethod::PasswordAndOtp, ctx).await
    }

    /// The hash of a live enrollment token and the user it was issued to.
    async fn enrollment_holder(&self, token: &SecretString) -> Result<(TokenHash, UserRecord), AuthError> {
        let hash = challenge_hash(token)?;
        let challenge = self
            .mfa()?
            .challenge(&hash, ChallengePurpose::Enroll, self.now())
            .await?
            .ok_or(AuthError::InvalidMfaToken)?;
        Ok((hash, self.challenged_user(&challenge).await?))
    }

    /// The user a live challenge was issued to, if it still holds: the account is active and
    /// its password is the one that was verified.
    async fn challenged_user(&self, challenge: &MfaChallenge) -> Result<UserRecord, AuthError> {
        match self.inner.users.user_by_id(challenge.user_id).await? {
            Some(record) if TokenHash::of(&record.password_hash) != challenge.password_fingerprint => {
                Err(AuthError::InvalidMfaToken)
            }
            Some(record) if record.user.status != UserStatus::Active => Err(AuthError::AccountDisabled),
            Some(record) => Ok(record),
            None => Err(AuthError::InvalidMfaToken),
        }
    }

    /// What `code` is for `factor`: a recovery code by its shape (its keyed hash), else a TOTP
    /// code and the step it matches now, else [`FactorUse::Wrong`]; and, when a previous key
    /// opened the secret, the secret sealed again with the current key (to store once the code
    /// is accepted).
    fn factor_use(&self, factor: &TotpFactor, code: &SecretString) -> Result<(FactorUse, Option<Vec<u8>>), AuthError> {
        if let Some(canonical) = mfa::normalize_recovery_code(code.expose()) {
            return Ok((FactorUse::RecoveryCode(self.recovery_code_hash(factor.user_id, &canonical)), None));
        }
        let secret_box = &self.inner.secret_box;
        let (secret, previous_key) = secret_box.open(factor.user_id, &factor.sealed_secret)?;
        let now = self.inner.clock.now().timestamp();
        let factor_use = mfa::matching_step(&secret, code.expose(), now).map_or(FactorUse::Wrong, FactorUse::TotpStep);
        let resealed =
            (previous_key && factor_use != FactorUse::Wrong).then(|| secret_box.seal(factor.user_id, &secret));
        Ok((factor_use, resealed))
    }

    /// The keyed hash of a canonical recovery code of `user_id` (HMAC-SHA-256 under the codes
    /// key: 50 bits are not enough to leave to a leaked database).
    fn recovery_code_hash(&self, user_id: Uuid, canonical: &str) -> TokenHash {
        self.inner.codes_key.digest(format!("recovery_code:{user_id}:{canonical}").as_bytes())
    }

    /// After an accepted code: audit and mail a spent recovery code; store `resealed`, the secret
    /// sealed with the current key after a previous key opened it (a compare-and-set on the old
    /// value, best effort: failing to re-seal loses nothing).
    async fn after_factor_use(
        &self,
        user: &User,
        factor: &TotpFactor,
        recovery: bool,
        resealed: Option<Vec<u8>>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        if recovery {
            let left = self.mfa()?.totp_factor(user.id).await?.map_or(0, |f| f.recovery_codes_left);
            self.audit(AuditEventType::MfaRecoveryCodeUsed, Some(user.id), ctx).detail("left", left).record().await?;
            self.mfa_notice(user, SecondFactorChange::RecoveryCodeUsed, ctx);
        }
        if let Some(sealed) = resealed {
            if let Err(err) = self.mfa()?.reseal_totp(factor.user_id, &factor.sealed_secret, sealed).await {
                tracing::warn!(user_id = %user.id, error = %err, "TOTP secret not re-sealed with the current key");
            }
        }
        Ok(())
    }

    /// Checks a second-factor code of the caller outside a login challenge (step-up, disable,
    /// new recovery codes): the attempt counts toward `mfa_failures_per_account` and the lockout
    /// first; an accepted code is spent.
    async fn check_factor_code(
        &self,
        user: &User,
        factor: &TotpFactor,
        code: &SecretString,
        context: &'static str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.take_mfa_attempt(user.id, ctx).await?;
        let (factor_use, resealed) = self.factor_use(factor, code)?;
        let recovery = matches!(factor_use, FactorUse::RecoveryCode(_));
        if !self.mfa()?.use_factor(user.id, factor_use).await? {
            self.audit(AuditEventType::MfaFailed, Some(user.id), ctx)
                .failed()
                .detail("context", context)
                .record()
                .await?;
            return Err(AuthError::InvalidMfaCode { attempts_left: None });
        }
        self.clear_mfa_attempts(user.id).await?;
        self.after_factor_use(user, factor, recovery, resealed, ctx).await
    }

    /// Step-up: a sensitive action of a user who has a second factor needs a code (`mfa_code`),
    /// or a session made with two factors within [`MfaConfig::step_up_window`]. Users without a
    /// factor pass.
    ///
    /// [`MfaConfig::step_up_window`]: crate::MfaConfig::step_up_window
    ///
    /// # Errors
    /// `mfa_required` (403), `invalid_mfa_code`, `rate_limited`, `store_unavailable`.
    pub(super) async fn step_up(
        &self,
        claims: &Claims,
        user: &User,
        code: Option<&SecretString>,
        context: &'static str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let Some(factor) = self.active_factor(user.id).await? else { return Ok(()) };
        if let Some(code) = code.filter(|c| !c.expose().trim().is_empty()) {
            return self.check_factor_code(user, &factor, code, context, ctx).await;
        }
        let window = super::delta(self.inner.config.mfa.step_up_window);
        let recent = self.inner.sessions.session(claims.sid).await?.is_some_and(|s| {
            s.user_id == claims.sub && s.auth_method.is_multi_factor() && s.created_at + window >= self.now()
        });
        if recent {
            Ok(())
        } else {
            Err(AuthError::MfaRequired)
        }
    }

    /// `GET /mfa`: the caller's second-factor state.
    ///
    /// # Errors
    /// `not_found` (second factor off), `unauthorized`, `store_unavailable`.
    pub async fn mfa_status(&self, claims: &Claims) -> Result<MfaStatus, AuthError> {
        self.mfa()?;
        let record = self.caller(claims).await?;
        let factor = self.active_factor(claims.sub).await?;
        Ok(MfaStatus {
            totp_enabled: factor.is_some(),
            totp_confirmed_at: factor.as_ref().and_then(|f| f.confirmed_at),
            recovery_codes_left: factor.map_or(0, |f| f.recovery_codes_left),
            required: self.factor_required(&record.user.role),
        })
    }

    /// `POST /mfa/totp/enroll`: starts a TOTP enrollment — a new 160-bit secret, sealed at rest
    /// — for the caller (`claims`, with the current password re-checked) or for the holder of an
    /// enrollment token (`req.mfa_token`, from a login that answered `mfa_enrollment_required`).
    /// Nothing is active until [`confirm_totp`](Self::confirm_totp); a new enrollment replaces a
    /// pending one. The account name in the URI is the username, else the email address.
    ///
    /// # Errors
    /// `mfa_already_enabled` (409), `invalid_credentials` (403, wrong password),
    /// `invalid_mfa_token`, `invalid_request` (an access token without `password`),
    /// `unauthorized` (neither an access token nor `mfa_token`), `account_disabled`,
    /// `rate_limited`, `overloaded`, `not_found` (second factor off), `store_unavailable`.
    pub async fn enroll_totp(
        &self,
        claims: Option<&Claims>,
        req: TotpEnrollRequest,
        ctx: &RequestContext,
    ) -> Result<TotpEnrollment, AuthError> {
        let store = self.mfa()?.clone();
        let user = match (claims, &req.mfa_token) {
            (Some(claims), _) => {
                let record = self.caller(claims).await?;
                let password = req
                    .password
                    .as_ref()
                    .ok_or_else(|| AuthError::invalid_field("password", "the current password is required"))?;
                self.recheck_password(&record, password, AuditEventType::MfaEnabled, ctx).await?;
                record.user
            }
            (None, Some(token)) => self.enrollment_holder(token).await?.1.user,
            (None, None) => return Err(AuthError::Unauthorized),
        };
        let secret = mfa::new_totp_secret();
        let issuer = self.inner.config.mfa.issuer.as_deref().unwrap_or(&self.inner.config.issuer);
        let otpauth_uri = mfa::otpauth_uri(&secret, issuer, user.name()).map_err(AuthError::internal)?;
        // Drawing and compressing the PNG is CPU work: off the async executor.
        let uri = otpauth_uri.clone();
        let qr_png = tokio::task::spawn_blocking(move || mfa::qr_png_data_uri(&uri))
            .await
            .map_err(AuthError::internal)?
            .map_err(AuthError::internal)?;
        let factor = TotpFactor {
            user_id: user.id,
            sealed_secret: self.inner.secret_box.seal(user.id, &secret),
            created_at: self.now(),
            confirmed_at: None,
            last_used_step: None,
            recovery_codes_left: 0,
        };
        if !store.put_pending_totp(factor).await? {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        Ok(TotpEnrollment {
            secret: mfa::secret_base32(&secret),
            otpauth_uri,
            qr_png,
            expires_in: ENROLLMENT_TTL_SECONDS,
        })
    }

    /// `POST /mfa/totp/confirm`: the first code from the app activates the pending factor (its
    /// step counts as used) and answers ten recovery codes, shown this once. With an enrollment
    /// token instead of an access token, the login that required it completes too: the answer
    /// carries that session's tokens (`amr: ["pwd","otp"]`). Audited `mfa_enabled`; a notice is
    /// mailed.
    ///
    /// # Errors
    /// `invalid_mfa_code` (400; with a token, `details.attempts_left`), `not_found` (nothing
    /// pending, or it expired after [`ENROLLMENT_TTL_SECONDS`]), `invalid_mfa_token`,
    /// `unauthorized` (neither an access token nor `mfa_token`), `account_disabled`,
    /// `invalid_credentials` (the password changed while the login's session was being created),
    /// `rate_limited`, `internal` (no configured key opens the sealed secret),
    /// `store_unavailable`.
    pub async fn confirm_totp(
        &self,
        claims: Option<&Claims>,
        req: TotpConfirmRequest,
        ctx: &RequestContext,
    ) -> Result<TotpConfirmation, AuthError> {
        let store = self.mfa()?.clone();
        let at = self.now();
        let (record, challenge) = match (claims, &req.mfa_token) {
            (Some(claims), _) => (self.caller(claims).await?, None),
            (None, Some(token)) => {
                let (hash, record) = self.enrollment_holder(token).await?;
                (record, Some(hash))
            }
            (None, None) => return Err(AuthError::Unauthorized),
        };
        let user_id = record.user.id;
        let started_after = at - enrollment_window();
        let pending = store
            .totp_factor(user_id)
            .await?
            .filter(|f| !f.is_active() && f.created_at >= started_after)
            .ok_or(AuthError::NotFound)?;
        self.take_mfa_attempt(user_id, ctx).await?;
        let (secret, _) = self.inner.secret_box.open(user_id, &pending.sealed_secret)?;
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT).map(|_| mfa::new_recovery_code()).collect();
        let factor_use = match mfa::matching_step(&secret, req.code.expose(), self.inner.clock.now().timestamp()) {
            Some(step) => FactorUse::Confirm {
                step,
                recovery_codes: self.recovery_hashes(user_id, &codes),
                started_after,
                at,
                sealed_secret: pending.sealed_secret.clone(),
            },
            None => FactorUse::Wrong,
        };
        let accepted = match &challenge {
            Some(hash) => match store.redeem_challenge(hash, ChallengePurpose::Enroll, factor_use, at).await? {
                ChallengeOutcome::Redeemed(_) => Ok(()),
                ChallengeOutcome::Rejected { attempts_left } => Err(Some(attempts_left)),
                ChallengeOutcome::Dead => return Err(AuthError::InvalidMfaToken),
            },
            None => {
                if store.use_factor(user_id, factor_use).await? {
                    Ok(())
                } else {
                    Err(None)
                }
            }
        };
        if let Err(attempts_left) = accepted {
            self.audit(AuditEventType::MfaFailed, Some(user_id), ctx)
                .failed()
                .detail("context", "enroll")
                .record()
                .await?;
            return Err(AuthError::InvalidMfaCode { attempts_left });
        }
        self.clear_mfa_attempts(user_id).await?;
        // A factor makes every other session's step-up window moot, but not the sessions: they
        // were made by the rightful user (who just proved the password or holds a session).
        self.audit(AuditEventType::MfaEnabled, Some(user_id), ctx).record().await?;
        self.mfa_notice(&record.user, SecondFactorChange::Enabled, ctx);
        let tokens = match challenge {
            Some(_) => Some(Box::new(self.finish_login(record, None, AuthMethod::PasswordAndOtp, ctx).await?)),
            None => None,
        };
        Ok(TotpConfirmation { recovery_codes: codes, tokens })
    }

    fn recovery_hashes(&self, user_id: Uuid, codes: &[String]) -> Vec<TokenHash> {
        codes
            .iter()
            .filter_map(|code| mfa::normalize_recovery_code(code))
            .map(|canonical| self.recovery_code_hash(user_id, &canonical))
            .collect()
    }

    /// The caller's record and active factor after re-checking the password and a second-factor
    /// code: what disabling the factor and new recovery codes need.
    async fn recheck_both(
        &self,
        claims: &Claims,
        req: &MfaConfirmRequest,
        action: AuditEventType,
        ctx: &RequestContext,
    ) -> Result<(UserRecord, TotpFactor), AuthError> {
        let record = self.caller(claims).await?;
        let factor = self.active_factor(claims.sub).await?.ok_or(AuthError::NotFound)?;
        self.recheck_password(&record, &req.password, action, ctx).await?;
        self.check_factor_code(&record.user, &factor, &req.code, action.as_str(), ctx).await?;
        Ok((record, factor))
    }

    /// `POST /mfa/recovery-codes`: ten new recovery codes (the old ones die), after the password
    /// and a second-factor code. Audited; a notice is mailed.
    ///
    /// # Errors
    /// `not_found` (no active factor), `invalid_credentials` (403), `invalid_mfa_code`,
    /// `rate_limited`, `store_unavailable`.
    pub async fn regenerate_recovery_codes(
        &self,
        claims: &Claims,
        req: MfaConfirmRequest,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, AuthError> {
        self.mfa()?;
        let (record, _) = self.recheck_both(claims, &req, AuditEventType::MfaRecoveryCodesRegenerated, ctx).await?;
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT).map(|_| mfa::new_recovery_code()).collect();
        if !self.mfa()?.replace_recovery_codes(claims.sub, self.recovery_hashes(claims.sub, &codes)).await? {
            return Err(AuthError::NotFound);
        }
        self.audit(AuditEventType::MfaRecoveryCodesRegenerated, Some(claims.sub), ctx).record().await?;
        self.mfa_notice(&record.user, SecondFactorChange::RecoveryCodesRegenerated, ctx);
        Ok(codes)
    }

    /// `DELETE /mfa/totp`: removes the caller's factor and recovery codes, after the password and
    /// a second-factor code. Audited; a notice is mailed.
    ///
    /// # Errors
    /// `not_found` (no active factor), `invalid_credentials` (403), `invalid_mfa_code`,
    /// `rate_limited`, `store_unavailable`.
    pub async fn disable_totp(
        &self,
        claims: &Claims,
        req: MfaConfirmRequest,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.mfa()?;
        let (record, _) = self.recheck_both(claims, &req, AuditEventType::MfaDisabled, ctx).await?;
        self.mfa()?.delete_totp(claims.sub).await?;
        self.audit(AuditEventType::MfaDisabled, Some(claims.sub), ctx).record().await?;
        self.mfa_notice(&record.user, SecondFactorChange::Disabled, ctx);
        Ok(())
    }

    /// Removes `user`'s factor for an admin (`DELETE /admin/users/{id}/mfa`), a pending one too;
    /// whether an active one was removed (then the user gets a notice). The caller audits.
    pub(super) async fn reset_factor(&self, user: &User, ctx: &RequestContext) -> Result<bool, AuthError> {
        let active = self.active_factor(user.id).await?.is_some();
        let removed = self.mfa()?.delete_totp(user.id).await?;
        if active && removed {
            self.mfa_notice(user, SecondFactorChange::ResetByAdmin, ctx);
        }
        Ok(active && removed)
    }

    fn mfa_notice(&self, user: &User, change: SecondFactorChange, ctx: &RequestContext) {
        if let Some(email) = &user.email {
            self.send_notice(email, &MailKind::SecondFactorChanged { change, at: self.now(), ip: ctx.ip });
        }
    }
}

/// The stored hash of a presented challenge token; an empty or oversized one is `invalid_mfa_token`.
fn challenge_hash(token: &SecretString) -> Result<TokenHash, AuthError> {
    let token = token.expose();
    if token.is_empty() || token.len() > MAX_MFA_TOKEN_LEN {
        return Err(AuthError::InvalidMfaToken);
    }
    Ok(TokenHash::of(token))
}
