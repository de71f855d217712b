"""The connection form in a real browser (Debian's headless Chromium, driven by Selenium).

Log in as the configured user, add a connection of type "RTC IM (Volcengine)", check that every
custom field of the provider's ``conn-fields`` is on the form with its label and description
(and the relabelled / hidden standard fields), save it, then test it through
``POST /api/v2/connections/test`` with the right and a wrong secret. Screenshots of the form go
to ``e2e-artifacts/``.

Selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium: selenium-manager is never
used (nothing can be downloaded).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile

import pytest
from harness import REPO, wait_for

CONN_ID = "rtcim_e2e_ui"
SESSION_TOKEN = "e2e-session-token-7f3a9c51"  # a secret of the form: must never be logged


def provider_info():
    sys.path.insert(0, str(REPO))
    try:
        from airflow_provider_rtcim.get_provider_info import get_provider_info
    finally:
        sys.path.remove(str(REPO))
    (entry,) = get_provider_info()["connection-types"]
    return entry


@pytest.fixture(scope="module")
def browser(artifacts):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="rtcim-e2e-chromium-")
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,2200",
    ):  # fmt: skip
        opts.add_argument(arg)
    service = Service(executable_path="/usr/bin/chromedriver", log_output=str(artifacts / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.rtcim_artifacts = artifacts  # where _wait leaves the page when it times out
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, what, fn, timeout=30):
    from selenium.common.exceptions import WebDriverException

    def probe():
        try:
            return fn()
        except WebDriverException:
            return None

    try:
        return wait_for(probe, timeout, what, 0.3)
    except AssertionError:
        artifacts = getattr(driver, "rtcim_artifacts", None)
        if artifacts is not None:  # what the page showed instead, for whoever reads the failure
            slug = re.sub(r"\W+", "-", what).strip("-")
            driver.save_screenshot(str(artifacts / f"timeout-{slug}.png"))
            (artifacts / f"timeout-{slug}.html").write_text(driver.page_source)
        raise


def _css(driver, selector, visible=True):
    from selenium.webdriver.common.by import By

    found = [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed() or not visible]
    return found[0] if found else None


def _form_fields(dialog):
    """{input name: (label, description)} of every field rendered in the dialog."""
    from selenium.webdriver.common.by import By

    fields = {}
    for root in dialog.find_elements(By.CSS_SELECTOR, "[data-scope=field][data-part=root]"):
        names = [e.get_attribute("name") for e in root.find_elements(By.CSS_SELECTOR, "input, textarea")]
        # the 3.0 UI renders an enum as a select with no named input: its root is "select:<name>"
        selects = root.find_elements(By.CSS_SELECTOR, "[data-scope=select][data-part=root]")
        names += [s.get_attribute("id").removeprefix("select:") for s in selects]
        names = [n for n in names if n]
        labels = root.find_elements(By.CSS_SELECTOR, "[data-part=label]")
        helps = root.find_elements(By.CSS_SELECTOR, "[data-part=helper-text]")
        for name in names:
            fields[name] = (  # textContent: a field in a collapsed section has no visible text
                labels[0].get_attribute("textContent").replace("*", "").strip() if labels else "",
                helps[0].get_attribute("textContent").strip() if helps else "",
            )
    return fields


def test_connection_form_in_chromium_has_every_field_and_saves(browser, deployment, api, artifacts):
    from selenium.webdriver.common.by import By

    driver, info, entry = browser, deployment.emulator_info, provider_info()
    driver.get(deployment.api_url + "/")
    _wait(driver, "the login form", lambda: _css(driver, "input[name=username]")).send_keys("admin")
    _css(driver, "input[name=password]").send_keys(deployment.admin_password)
    _css(driver, "button[type=submit]").click()
    _wait(driver, "the home page after login", lambda: "/auth/login" not in driver.current_url)

    driver.get(deployment.api_url + "/connections")
    add = _wait(
        driver,
        "the Add Connection button",
        lambda: next(
            (b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Add Connection"), None
        ),
    )
    add.click()
    dialog = _wait(driver, "the Add Connection dialog", lambda: _css(driver, "[role=dialog]"))
    dialog.find_element(By.CSS_SELECTOR, "input[name=connection_id]").send_keys(CONN_ID)
    combo = dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]")
    combo.send_keys(entry["hook-name"])

    def rtcim_option():
        options = driver.find_elements(By.CSS_SELECTOR, "[role=option]") or driver.find_elements(
            By.CSS_SELECTOR, "[id*=option]"
        )
        return next((o for o in options if o.text.strip() == entry["hook-name"] and o.is_displayed()), None)

    # Click the option itself: Enter on a filtered list selects nothing in the 3.0 UI (it then fails
    # with "No value found for item"), and picks the highlighted one in 3.3.
    _wait(driver, "the RTC IM option", rtcim_option).click()
    _wait(driver, "the standard fields", lambda: _css(driver, "input[name=login]"))
    driver.save_screenshot(str(artifacts / "connection-form-standard-fields.png"))
    standard = _form_fields(dialog)
    behaviour = entry["ui-field-behaviour"]
    for std, label in behaviour["relabeling"].items():
        assert standard.get(std, ("",))[0] == label, f"standard field {std}: {standard.get(std)}"
    for hidden in behaviour["hidden-fields"]:
        assert hidden not in standard, f"{hidden} should be hidden"
    assert _css(driver, "input[name=password]").get_attribute("type") == "password"
    _css(driver, "input[name=host]").send_keys(deployment.proxy.url)
    _css(driver, "input[name=login]").send_keys(info["access_key_id"])
    _css(driver, "input[name=password]").send_keys(info["secret_access_key"])

    dialog.find_element(By.CSS_SELECTOR, "button[id$='trigger:Extra Fields']").click()
    _wait(driver, "the extra fields", lambda: _css(driver, "input[name=element_endpoint_url]"))
    driver.save_screenshot(str(artifacts / "connection-form-extra-fields.png"))
    fields = _form_fields(dialog)
    missing, wrong = [], {}
    for key, spec in entry["conn-fields"].items():
        name = f"element_{key}"
        if name not in fields:
            missing.append(key)
        elif fields[name] != (spec["label"], spec["description"]):
            wrong[key] = {"form": fields[name], "provider": (spec["label"], spec["description"])}
    if missing:
        (artifacts / "connection-form-extra-fields.html").write_text(driver.page_source)
    assert not missing, f"extra fields not on the form: {missing}; the form has {sorted(fields)}"
    assert not wrong, json.dumps(wrong, indent=1, ensure_ascii=False)
    region = _css(driver, "input[name=element_region]", visible=False)
    if region is not None:
        shown = region.get_attribute("value")
    else:  # 3.0: a select, showing its value as text
        shown = _css(driver, "[id='select:element_region'] [data-part=value-text]", visible=False)
        shown = shown.get_attribute("textContent").strip()
    assert shown == "cn-north-1", "the Region's schema default is not pre-filled"
    token_type = _css(driver, "input[name=element_session_token]").get_attribute("type")
    if tuple(int(n) for n in api.get("/version")["version"].split(".")[:2]) >= (3, 1):
        assert token_type == "password"
    else:  # the 3.0 UI renders no extra field as a password input: the API still marks it secret
        assert token_type == "text"
        response = api.session.get(f"{api.base_url}/ui/connections/hook_meta", timeout=60)
        assert response.status_code == 200, response.text[:500]
        (rtcim,) = [h for h in response.json() if h["connection_type"] == "rtcim"]
        assert rtcim["extra_fields"]["session_token"]["schema"]["format"] == "password"
    _css(driver, "input[name=element_app_id]").send_keys(str(info["app_id"]))
    _css(driver, "input[name=element_session_token]").send_keys(SESSION_TOKEN)
    driver.save_screenshot(str(artifacts / "connection-form-filled.png"))
    save = next(b for b in dialog.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Save")
    _wait(driver, "the Save button to be enabled", lambda: save.is_enabled())
    save.click()
    _wait(driver, "the dialog to close", lambda: not _css(driver, "[role=dialog]"))
    _wait(driver, "the new connection in the list", lambda: CONN_ID in driver.page_source)
    driver.save_screenshot(str(artifacts / "connection-list.png"))

    stored = api.get(f"/connections/{CONN_ID}")
    assert stored["conn_type"] == "rtcim" and stored["login"] == info["access_key_id"]
    assert stored["host"] == deployment.proxy.url and stored["port"] is None
    extra = json.loads(stored["extra"])
    assert extra["app_id"] == info["app_id"] and extra["region"] == "cn-north-1"
    assert stored["password"] != info["secret_access_key"], "the API returned the secret in clear"


def _test_body(deployment, password):
    info = deployment.emulator_info
    return {
        "connection_id": CONN_ID,
        "conn_type": "rtcim",
        "host": deployment.proxy.url,
        "login": info["access_key_id"],
        "password": password,
        "extra": json.dumps(
            {"app_id": info["app_id"], "region": info["region"], "session_token": SESSION_TOKEN}
        ),
    }


def test_the_saved_connection_tests_ok_with_the_right_secret(api, deployment):
    """The connection as the UI stored it (every empty extra an explicit null), plus its secret."""
    info = deployment.emulator_info
    stored = api.get(f"/connections/{CONN_ID}")
    extra = json.loads(stored["extra"])
    assert any(v is None for v in extra.values()), f"the UI stored no empty extra as null: {extra}"
    body = {**_test_body(deployment, info["secret_access_key"]), "extra": stored["extra"]}
    result = api.post("/connections/test", body)
    assert result["status"] is True, result
    assert f"Connected to {deployment.proxy.url}" in result["message"]
    assert (
        f"as {info['access_key_id']}" in result["message"] and f"AppId {info['app_id']}" in result["message"]
    )


def test_a_wrong_secret_says_the_secret_does_not_match(api, deployment):
    result = api.post("/connections/test", _test_body(deployment, "not-the-secret-key-0000"))
    assert result["status"] is False, result
    message = result["message"]
    assert "SignatureDoesNotMatch" in message and "the Secret Access Key does not match" in message, message
    assert "not-the-secret-key-0000" not in result["message"]
