//! The `users` subcommands of the example server: the common admin operations from the command
//! line, through [`Auth::admin`], the code behind the admin API.

use anyhow::bail;
use auth_core::{Auth, ListUsersRequest, Role, User, UserStatus};

/// Usage of the `users` subcommands.
pub const USERS_USAGE: &str = "usage:
  auth-example-server users list [--query PREFIX] [--status active|disabled] [--role ROLE] [--limit N] [--cursor C]
  auth-example-server users disable USER           USER: id, username or email; ends every session now
  auth-example-server users enable USER
  auth-example-server users set-role USER ROLE     ends every session of the user now
  auth-example-server users reset-mfa USER         removes the user's second factor (a lost authenticator)";

/// The user named by `who`: a user id, a username, or an email address.
async fn find_user(auth: &Auth, who: &str) -> anyhow::Result<User> {
    let store = auth.user_store();
    let record = match uuid::Uuid::parse_str(who) {
        Ok(id) => store.user_by_id(id).await?,
        Err(_) if who.contains('@') => store.user_by_email(who).await?,
        Err(_) => store.user_by_username(who).await?,
    };
    record.map(|r| r.user).ok_or_else(|| anyhow::anyhow!("no user {who:?}"))
}

/// One line of `users list`: id, username, email, role, status (tab-separated).
fn user_line(user: &User) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    format!("{}\t{}\t{}\t{}\t{}", user.id, dash(&user.username), dash(&user.email), user.role, user.status.as_str())
}

/// Runs `auth-example-server users …` (`args` after `users`) through [`Auth::admin`], the code
/// behind the admin API, and returns what to print. Actions are audited with no actor.
///
/// # Errors
/// Bad arguments (with [`USERS_USAGE`]), an unknown user, or the admin operation's error
/// (`last_admin`, an unknown role, …).
pub async fn users_command(auth: &Auth, args: &[&str]) -> anyhow::Result<String> {
    let admin = auth.admin();
    let describe = |err: auth_core::AuthError| match err {
        auth_core::AuthError::InvalidRequest { fields } => {
            let reasons: Vec<String> = fields.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{}", reasons.join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    };
    match args {
        ["list", options @ ..] => {
            let mut req = ListUsersRequest::default();
            for pair in options.chunks(2) {
                let [flag, value] = pair else { bail!("{USERS_USAGE}") };
                let slot = match *flag {
                    "--query" => &mut req.query,
                    "--status" => &mut req.status,
                    "--role" => &mut req.role,
                    "--limit" => &mut req.limit,
                    "--cursor" => &mut req.cursor,
                    _ => bail!("{USERS_USAGE}"),
                };
                *slot = Some((*value).to_owned());
            }
            let page = admin.list_users(&req).await.map_err(describe)?;
            let mut out: Vec<String> = page.items.iter().map(user_line).collect();
            if let Some(next) = page.next_cursor {
                out.push(format!("more: --cursor {next}"));
            }
            Ok(out.join("\n"))
        }
        ["disable" | "enable", who] => {
            let status = if args[0] == "disable" { UserStatus::Disabled } else { UserStatus::Active };
            let user = find_user(auth, who).await?;
            let user = admin.set_status(user.id, status).await.map_err(describe)?;
            Ok(user_line(&user))
        }
        ["set-role", who, role] => {
            let user = find_user(auth, who).await?;
            let user = admin.set_role(user.id, &Role::new(*role)).await.map_err(describe)?;
            Ok(user_line(&user))
        }
        ["reset-mfa", who] => {
            let user = find_user(auth, who).await?;
            admin.reset_mfa(user.id).await.map_err(describe)?;
            Ok(format!("{}\tsecond factor removed", user_line(&user)))
        }
        _ => bail!("{USERS_USAGE}"),
    }
}
