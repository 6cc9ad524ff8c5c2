#!/usr/bin/env python3
"""Browser test of the example server's page (examples/server/static/index.html).

It proves, in a real headless Chromium, that with the cookie token transport the page works end
to end: register, the protected host route, staying signed in across a reload through the
HttpOnly refresh cookie (which page scripts cannot read), two browsers seeing and revoking each
other's sessions, a password change, logout clearing the cookie, login with the new password,
and a wrong password shown as an accessible error.

Run by a Rust test in examples/server/tests, which starts the example server (image captcha off,
AUTH_TOKEN_TRANSPORT=cookie) and calls:

    python3 tests/browser/login_page.py --base-url http://127.0.0.1:PORT --screenshots DIR

Needs Python 3.11, `selenium` 4 and Debian's chromium + chromium-driver (paths overridable by the
CHROMIUM and CHROMEDRIVER environment variables). Writes 01-….png, 02-….png… into DIR; on a
failure also failure.png and failure.html, and exits non-zero.
"""

import argparse
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 15
PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "violet kettle orbit 93 lantern"


class StepFailed(Exception):
    pass


def new_driver(profile_dir: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                f"--user-data-dir={profile_dir}"):
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


class Page:
    """One browser on the page, with waits that fail with a readable message."""

    def __init__(self, driver: webdriver.Chrome, base_url: str):
        self.d, self.base = driver, base_url

    def wait(self, what: str, condition, timeout: float = TIMEOUT):
        try:
            return WebDriverWait(self.d, timeout).until(lambda d: condition())
        except TimeoutException:
            raise StepFailed(f"timed out after {timeout} s waiting for: {what}") from None

    def el(self, element_id: str):
        return self.d.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.el(element_id).text.strip()

    def visible_view(self, view: str):
        def check():
            shown = [v for v in ("view-signed-out", "view-mfa", "view-signed-in") if self.el(v).is_displayed()]
            return shown == [view]
        self.wait(f"only #{view} to be visible", check)

    def fill(self, element_id: str, value: str):
        field = self.el(element_id)
        field.clear()
        field.send_keys(value)

    def submit(self, form_id: str):
        self.el(form_id).find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def open(self):
        self.d.get(self.base + "/")

    def signed_in_as(self, username: str):
        self.visible_view("view-signed-in")
        self.wait(f"#me-username to read {username!r}", lambda: self.text("me-username") == username)

    def login(self, username: str, password: str):
        self.fill("login-identifier", username)
        self.fill("login-password", password)
        self.submit("form-login")

    def session_rows(self):
        return self.el("sessions-list").find_elements(By.CSS_SELECTOR, "[data-session-id]")

    def wait_rows(self, n: int):
        self.wait(f"{n} row(s) in #sessions-list", lambda: len(self.session_rows()) == n)
        return self.session_rows()

    def all_cookies(self) -> list[dict]:
        """Every cookie of this browser, HttpOnly ones included. WebDriver's get_cookies() lists only
        those sent to the current URL, and the refresh cookie is scoped to the auth mount
        (Path=/api/auth), so ask Chromium itself (DevTools protocol), plus get_cookies()."""
        try:
            cookies = self.d.execute_cdp_cmd("Storage.getCookies", {})["cookies"]
        except WebDriverException:
            cookies = self.d.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
        return cookies + self.d.get_cookies()

    def refresh_cookie(self):
        return next((c for c in self.all_cookies() if "auth-refresh" in c["name"]), None)

    def script_visible_state(self) -> str:
        return self.d.execute_script(
            "return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)].join('\\n')")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--screenshots", required=True, type=Path, help="directory for the PNGs")
    args = parser.parse_args()
    args.screenshots.mkdir(parents=True, exist_ok=True)
    base = args.base_url.rstrip("/")
    username = f"browser_{secrets.token_hex(4)}"
    drivers: list[webdriver.Chrome] = []
    step_no = 0
    current = "start"

    def step(name: str):
        nonlocal step_no, current
        step_no += 1
        current = f"{step_no:02d}-{name}"
        print(f"step {current}", flush=True)

    def shot(driver=None):
        (driver or drivers[0]).save_screenshot(str(args.screenshots / f"{current}.png"))

    with (tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile1,
          tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile2):
        try:
            drivers.append(new_driver(profile1))
            a = Page(drivers[0], base)

            step("signed-out")
            a.open()
            a.visible_view("view-signed-out")
            shot()

            step("register")
            a.fill("register-username", username)
            a.fill("register-password", PASSWORD)
            a.submit("form-register")
            a.signed_in_as(username)
            shot()

            step("protected-data")
            a.wait("#protected-data to be filled", lambda: a.text("protected-data") != "")
            raw = a.text("protected-data")
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as e:
                raise StepFailed(f"#protected-data is not JSON ({e}): {raw!r}") from None
            if not isinstance(data, dict) or (username not in raw and not data.get("user_id")):
                raise StepFailed(f"#protected-data names neither the user nor an id: {raw!r}")
            shot()

            step("reload-still-signed-in")
            a.d.refresh()
            a.signed_in_as(username)
            shot()

            step("cookies")
            cookie = a.refresh_cookie()
            if cookie is None:
                raise StepFailed(f"no *auth-refresh* cookie among {[c['name'] for c in a.all_cookies()]}")
            flags = {k: cookie.get(k) for k in ("httpOnly", "secure", "sameSite")}
            if flags != {"httpOnly": True, "secure": True, "sameSite": "Lax"}:
                raise StepFailed(f"refresh cookie {cookie['name']} has {flags}")
            # What scripts see on the page, and on a document under the cookie's path.
            script_view = a.script_visible_state()
            a.d.get(base + "/api/auth/captcha/status")
            script_view += "\n" + a.script_visible_state()
            a.open()
            a.signed_in_as(username)
            for needle in ("auth-refresh", "auth-access", "eyJ", cookie["value"]):
                if needle in script_view:
                    raise StepFailed(f"page scripts can see {needle[:12]!r}…: {script_view!r}")
            for c in a.all_cookies():
                if len(c["value"]) >= 16 and c["value"] in script_view:
                    raise StepFailed(f"page scripts can see the value of cookie {c['name']}")
            print(f"  {cookie['name']}: {flags}; document.cookie = {a.d.execute_script('return document.cookie')!r}")
            shot()

            step("second-browser-login")
            drivers.append(new_driver(profile2))
            b = Page(drivers[1], base)
            b.open()
            b.visible_view("view-signed-out")
            b.login(username, PASSWORD)
            b.signed_in_as(username)
            b.wait_rows(2)
            shot(b.d)

            step("revoke-other-session")
            a.el("sessions-refresh").click()
            rows = a.wait_rows(2)
            currents = sorted(r.get_attribute("data-current") for r in rows)
            if currents != ["false", "true"]:
                raise StepFailed(f"expected one current and one other session, got data-current={currents}")
            other = next(r for r in rows if r.get_attribute("data-current") == "false")
            other.find_element(By.CSS_SELECTOR, "button.revoke").click()
            rows = a.wait_rows(1)
            if rows[0].get_attribute("data-current") != "true":
                raise StepFailed("the remaining session is not this device's")
            shot()

            step("second-browser-signed-out")
            b.d.refresh()
            b.visible_view("view-signed-out")
            shot(b.d)

            step("password-change")
            a.fill("password-current", PASSWORD)
            a.fill("password-new", NEW_PASSWORD)
            a.submit("form-password")
            a.wait("a success message in #status",
                   lambda: "password" in a.text("status").lower() and "changed" in a.text("status").lower())
            shot()

            step("logout")
            a.el("logout").click()
            a.visible_view("view-signed-out")
            a.d.refresh()
            a.visible_view("view-signed-out")
            a.wait("the refresh cookie to be gone", lambda: a.refresh_cookie() is None)
            shot()

            step("login-new-password")
            a.login(username, NEW_PASSWORD)
            a.signed_in_as(username)
            shot()

            step("wrong-password-error")
            a.el("logout").click()
            a.visible_view("view-signed-out")
            a.login(username, "definitely not the password")

            def error_text():
                alerts = [e.text.strip() for e in a.d.find_elements(By.CSS_SELECTOR, "[role=alert]") if e.is_displayed()]
                return a.text("login-password-error") or next((t for t in alerts if t), "")

            a.wait("an error next to the password or in an alert", lambda: error_text() != "")
            a.visible_view("view-signed-out")
            print(f"  error shown: {error_text()!r}")
            shot()

            step("api-docs")
            # The Swagger UI of the OpenAPI document renders under its Content-Security-Policy:
            # its vendored scripts ran and fetched /api/auth/openapi.json.
            a.d.get(f"{args.base_url}/docs/")
            a.wait(
                "the API title in the docs UI",
                lambda: any("canonical HTTP API" in e.text for e in a.d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")),
            )
            a.wait("the login operation listed", lambda: len(a.d.find_elements(By.CSS_SELECTOR, "#operations-session-Login")) == 1)
            shot()
        except Exception as e:  # noqa: BLE001 - every failure gets a screenshot and the page source
            print(f"FAILED at step {current}: {type(e).__name__}: {e}", file=sys.stderr)
            for i, driver in enumerate(drivers):
                suffix = "" if i == 0 else f"-{i + 1}"
                try:
                    driver.save_screenshot(str(args.screenshots / f"failure{suffix}.png"))
                    (args.screenshots / f"failure{suffix}.html").write_text(driver.page_source, encoding="utf-8")
                except Exception as inner:  # noqa: BLE001
                    print(f"  (could not save the failure state of browser {i + 1}: {inner})", file=sys.stderr)
            return 1
        finally:
            for driver in drivers:
                driver.quit()
    print(f"all {step_no} steps passed; screenshots in {args.screenshots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
