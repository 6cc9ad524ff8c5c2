//! The login page at `/` in a real browser: Debian's headless Chromium driven by Selenium
//! (`tests/browser/login_page.py`) against the example server binary with cookie transport on a
//! SQLite file. It registers, reloads and stays signed in through the refresh cookie, reads the
//! protected host route, checks that page scripts cannot read the token cookies, revokes the
//! session of a second browser profile, changes the password, logs out and logs in again.
//! Screenshots of each step go to `target/tmp/browser-screenshots/`.
//!
//! Needs `chromium`, `chromium-driver` and Python's `selenium` (`scripts/test.sh` installs them);
//! without them the test fails under `CI` and is skipped with a message otherwise.

mod common;

use std::time::Duration;

use common::{repo_root, Instance};

/// Whether `python3 -c 'import selenium'` works and the browser and its driver are installed.
async fn browser_available() -> Result<(), String> {
    for path in [chromium(), chromedriver()] {
        if !std::path::Path::new(&path).exists() {
            return Err(format!("{path} is missing (apt-get install chromium chromium-driver)"));
        }
    }
    let selenium = tokio::process::Command::new("python3").args(["-c", "import selenium"]).output().await;
    match selenium {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("python3 cannot import selenium (pip install selenium)".to_owned()),
    }
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned())
}

#[tokio::test]
async fn the_login_page_keeps_a_browser_signed_in_with_an_http_only_refresh_cookie() {
    if let Err(missing) = browser_available().await {
        assert!(std::env::var_os("CI").is_none(), "CI is set but the browser test cannot run: {missing}");
        eprintln!("skipping the browser test: {missing}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    let Instance { child: _server, base, mut log } = Instance::start(&[
        ("AUTH_DATABASE_URL", &db),
        ("AUTH_TOKEN_TRANSPORT", "cookie"),
        ("AUTH_ACCESS_TOKEN_COOKIE", "true"),
    ])
    .await;
    // Keep reading the server's log so that its pipe never fills.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let script = repo_root().join("tests/browser/login_page.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--base-url", &base, "--screenshots"])
        .arg(&shots)
        .kill_on_drop(true)
        .output();
    let out =
        tokio::time::timeout(Duration::from_secs(300), run).await.expect("the browser test took over 300 s").unwrap();
    drain.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\nscreenshots: {}", shots.display());
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}\n(screenshots in {})", shots.display());
    let taken = std::fs::read_dir(&shots)
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png")))
        .count();
    assert!(taken >= 13, "expected a screenshot per step, found {taken}");
}
