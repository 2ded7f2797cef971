"""The trigger workflow through spur's UI in headless Chromium (selenium + chromium-driver).

Run by tests/it/browser.rs with SPUR_URL, SPUR_PROJECT, SPUR_PROJECT_ID and SPUR_SCREENSHOTS.
Users mia and max (Maintainers) and dev (Developer) exist with password "password123".
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["SPUR_URL"]
PROJECT = os.environ["SPUR_PROJECT"]
PROJECT_ID = os.environ["SPUR_PROJECT_ID"]
SHOTS = os.environ["SPUR_SCREENSHOTS"]


def browser(javascript=True, size="1280,900"):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={size}"):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def wait(driver, condition, timeout=40):
    # Live regions are replaced while the page polls: an element found a moment ago may be
    # gone when read, which only means "look again".
    return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(condition)


def step(name):
    """Marks where the flow is, so a failure names its step."""
    print(f"step: {name}", flush=True)


def sign_in(driver, login, password="password123"):
    driver.delete_all_cookies()
    driver.get(URL + "/users/sign_in")
    driver.find_element(By.NAME, "user[login]").send_keys(login)
    driver.find_element(By.NAME, "user[password]").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(driver, EC.url_to_be(URL + "/"))


def trigger(token):
    data = urllib.parse.urlencode({"token": token, "ref": "main", "variables[DEPLOY_ENV]": "staging"}).encode()
    request = urllib.request.Request(f"{URL}/api/v4/projects/{PROJECT_ID}/trigger/pipeline", data=data)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def api(method, path, data=None):
    """The REST API as root (PRIVATE-TOKEN)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(f"{URL}/api/v4{path}", data=body, method=method,
                                     headers={"PRIVATE-TOKEN": os.environ["SPUR_ROOT_TOKEN"]})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def live_log(driver):
    """A running job's log: new lines are appended (no reload), a section the user unfolded
    stays unfolded, the box follows the end, and stops following once the user scrolls up."""
    live = os.environ["SPUR_LIVE_PROJECT_ID"]
    pipeline = api("POST", f"/projects/{live}/pipeline", {"ref": "main"})
    job = api("GET", f"/projects/{live}/pipelines/{pipeline['id']}/jobs")[0]
    driver.get(f"{URL}/root/live/-/jobs/{job['id']}")
    driver.execute_script("window.__spurNoReload = true;")
    wait(driver, EC.text_to_be_present_in_element((By.ID, "job-log"), "line 5"), timeout=60)
    prep = [d for d in driver.find_elements(By.CSS_SELECTOR, "#job-log details.section")
            if d.find_element(By.TAG_NAME, "summary").text.startswith("Installing deps")][0]
    assert prep.get_attribute("open") is None, "[collapsed=true] starts folded: " + prep.get_attribute("outerHTML")[:600]
    prep.find_element(By.TAG_NAME, "summary").click()
    assert prep.get_attribute("open") is not None
    wait(driver, EC.text_to_be_present_in_element((By.ID, "job-log"), "line 80"), timeout=60)
    assert prep.get_attribute("open") is not None, "the section the user unfolded stays unfolded"
    at_end = "var l = document.getElementById('job-log'); return l.scrollTop + l.clientHeight >= l.scrollHeight - 30;"
    taller = driver.execute_script("var l = document.getElementById('job-log'); return l.scrollHeight > l.clientHeight + 100;")
    assert taller, "the log is taller than its box by now"
    assert driver.execute_script(at_end), "the box follows the end"
    texts = driver.execute_script("return Array.prototype.map.call(document.querySelectorAll('#job-log .line'), function (l) { return l.textContent; });")
    numbered = [t for t in texts if t.startswith("line ")]
    assert numbered == [f"line {i}" for i in range(1, len(numbered) + 1)], "each line once, in order"
    shot(driver, "14-live-log-following")
    driver.execute_script("var l = document.getElementById('job-log'); l.scrollTop = 0; l.dispatchEvent(new Event('scroll'));")
    wait(driver, EC.text_to_be_present_in_element((By.ID, "job-log"), "line 120"), timeout=60)
    assert driver.execute_script("return document.getElementById('job-log').scrollTop;") < 50, "scrolled up, it stays put"
    assert driver.execute_script("return window.__spurNoReload === true;"), "the page reloaded"
    shot(driver, "14-live-log-scrolled-up")

    step("live pipeline page")
    # The pipeline page follows two changes in a row without reloading: a manual job played,
    # then the pipeline canceled.
    driver.get(f"{URL}/root/live/-/pipelines/{pipeline['id']}")
    driver.execute_script("window.__spurNoReload = true;")
    poke = [j for j in api("GET", f"/projects/{live}/pipelines/{pipeline['id']}/jobs") if j["name"] == "poke"][0]
    api("POST", f"/projects/{live}/jobs/{poke['id']}/play")
    wait(driver, lambda d: any(s in d.find_element(By.ID, f"job-cell-{poke['id']}").text for s in ("pending", "running")), timeout=60)
    api("POST", f"/projects/{live}/pipelines/{pipeline['id']}/cancel")
    wait(driver, EC.text_to_be_present_in_element((By.ID, "pipeline-status"), "canceled"), timeout=60)
    assert driver.execute_script("return window.__spurNoReload === true;"), "the pipeline page reloaded"
    shot(driver, "16-pipeline-live-canceled")


def rejected_form(driver):
    """Run pipeline with a ref that does not exist: the form comes back open, as typed, with
    the error beside the ref."""
    driver.get(f"{URL}/{PROJECT}/-/pipelines")
    driver.find_element(By.CSS_SELECTOR, "#run-pipeline > summary").click()
    ref = driver.find_element(By.ID, "run_ref")
    ref.clear()
    ref.send_keys("no-such-branch")
    driver.find_element(By.NAME, "variables[][key]").send_keys("KEPT_KEY")
    driver.find_element(By.NAME, "variables[][value]").send_keys("kept value")
    driver.find_element(By.XPATH, "//button[text()='Run pipeline']").click()
    error = wait(driver, EC.visibility_of_element_located((By.ID, "run-error")))
    assert "no-such-branch" in error.text, error.text
    assert driver.find_element(By.ID, "run_ref").get_attribute("value") == "no-such-branch"
    assert driver.find_element(By.NAME, "variables[][key]").get_attribute("value") == "KEPT_KEY"
    assert driver.find_element(By.NAME, "variables[][value]").get_attribute("value") == "kept value"
    shot(driver, "15-rejected-form-kept")


def main():
    driver = browser()
    try:
        step('A Maintainer signs in and adds a trigger token.')
        # A Maintainer signs in and adds a trigger token.
        driver.get(URL + "/users/sign_in")
        assert driver.find_element(By.NAME, "authenticity_token").get_attribute("value")
        shot(driver, "01-sign-in")
        sign_in(driver, "mia")
        assert PROJECT in driver.page_source
        shot(driver, "02-projects")
        settings = f"{URL}/{PROJECT}/-/settings/ci_cd"
        driver.get(settings)
        driver.find_element(By.ID, "trigger_description").send_keys("deploy from the browser")
        driver.find_element(By.XPATH, "//button[text()='Add new token']").click()
        wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Trigger token was created successfully."))
        assert f"{URL}/api/v4/projects/{PROJECT_ID}/trigger/pipeline" in driver.page_source, "curl example"
        created = driver.find_element(By.ID, "created-token")
        assert created.is_displayed() and created.text.startswith("glptt-"), "the new token shows once at the top"
        rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-trigger-id]")
        assert len(rows) == 2, len(rows)
        own = [r for r in rows if "deploy from the browser" in r.text][0]
        other = [r for r in rows if "deploy from the browser" not in r.text][0]
        token_el = own.find_element(By.CSS_SELECTOR, ".revealed.token")
        assert not token_el.is_displayed(), "tokens are masked until revealed"
        assert "*" * 47 in own.text
        shot(driver, "03-settings-masked")
        driver.find_element(By.CSS_SELECTOR, "[data-reveal=trigger-tokens]").click()
        wait(driver, lambda d: token_el.is_displayed())
        token = token_el.text.strip()
        assert token.startswith("glptt-") and len(token) > 20, token
        copy = own.find_element(By.CSS_SELECTOR, "[data-copy]")
        copy.click()
        wait(driver, lambda d: copy.get_attribute("data-copied") == "true")
        other_token = other.find_element(By.CSS_SELECTOR, ".revealed.token").text.strip()
        assert len(other_token) == 4, f"another Maintainer's token shows 4 characters, not {other_token!r}"
        assert not other.find_elements(By.CSS_SELECTOR, "[data-copy]"), "no copy button for others' tokens"
        shot(driver, "04-settings-revealed")

        step('curl-equivalent trigger with the token; the pipeline shows as triggered.')
        # curl-equivalent trigger with the token; the pipeline shows as triggered.
        status, pipeline = trigger(token)
        assert status == 201, (status, pipeline)
        driver.get(f"{URL}/{PROJECT}/-/pipelines")
        assert "triggered" in driver.find_element(By.CSS_SELECTOR, "table.list").text
        shot(driver, "05-pipelines")
        driver.get(f"{URL}/{PROJECT}/-/pipelines/{pipeline['id']}")
        shot(driver, "06-pipeline")
        driver.get(f"{URL}/{PROJECT}/-/jobs")
        assert "triggered" in driver.find_element(By.CSS_SELECTOR, "table.list").text
        shot(driver, "07-jobs")

        step('The job page follows the log live, without reloading.')
        # The job page follows the log live, without reloading.
        driver.find_element(By.CSS_SELECTOR, "table.list tbody tr a").click()
        driver.execute_script("window.__spurNoReload = true;")
        wait(driver, EC.text_to_be_present_in_element((By.ID, "job-log"), "step one for staging"))
        wait(driver, EC.text_to_be_present_in_element((By.ID, "job-log"), "step two done"), timeout=60)
        wait(driver, EC.text_to_be_present_in_element((By.ID, "job-status"), "success"), timeout=60)
        assert driver.execute_script("return window.__spurNoReload === true;"), "the page reloaded"
        block = driver.find_element(By.ID, "trigger-block")
        assert f"Trigger token: {token[6:10]}" in block.text, block.text
        value = block.find_element(By.CSS_SELECTOR, "#trigger-variables .revealed")
        assert not value.is_displayed()
        block.find_element(By.CSS_SELECTOR, "[data-reveal=trigger-variables]").click()
        wait(driver, lambda d: value.is_displayed())
        assert "staging" in block.text
        shot(driver, "08-job")
        step("live log")
        live_log(driver)
        step("rejected form")
        rejected_form(driver)

        step('Variables: add one, values hidden until revealed.')
        # Variables: add one, values hidden until revealed.
        driver.get(settings)
        driver.find_element(By.ID, "variable_key").send_keys("DEPLOY_KEY")
        driver.find_element(By.ID, "variable_value").send_keys("s3cr3t-value-123")
        driver.find_element(By.XPATH, "//button[text()='Add variable']").click()
        wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Variable was saved."))
        secret = driver.find_element(By.CSS_SELECTOR, "#project-variables .revealed")
        assert not secret.is_displayed()
        driver.find_element(By.CSS_SELECTOR, "[data-reveal=project-variables]").click()
        wait(driver, lambda d: secret.is_displayed())
        assert secret.text == "s3cr3t-value-123"
        shot(driver, "09-variables")

        step("Another Maintainer sees mia's token only as its 4 characters; a Developer gets 404.")
        # Another Maintainer sees mia's token only as its 4 characters; a Developer gets 404.
        sign_in(driver, "max")
        driver.get(settings)
        driver.find_element(By.CSS_SELECTOR, "[data-reveal=trigger-tokens]").click()
        row = [r for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-trigger-id]") if "deploy from the browser" in r.text][0]
        assert row.find_element(By.CSS_SELECTOR, ".revealed.token").text.strip() == token[6:10]
        assert token not in driver.page_source, "another member's full token reached the browser"
        shot(driver, "10-other-maintainer")
        sign_in(driver, "dev")
        driver.get(settings)
        assert "Page not found" in driver.page_source
        shot(driver, "11-developer-404")

        step('mia revokes the token; the next trigger with it gets 404.')
        # mia revokes the token; the next trigger with it gets 404.
        sign_in(driver, "mia")
        driver.get(settings)
        row = [r for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-trigger-id]") if "deploy from the browser" in r.text][0]
        row.find_element(By.XPATH, ".//button[@title='Revoke trigger']").click()
        alert = wait(driver, EC.alert_is_present())
        assert "By revoking a trigger token you will break any processes making use of it." in alert.text
        alert.accept()
        wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Trigger token removed."))
        shot(driver, "12-revoked")
        status, body = trigger(token)
        assert status == 404, (status, body)

        step('The administrator sees the job isolation in force and allows one private network')
        # The administrator sees the job isolation in force and allows one private network
        # for webhooks on Admin > Settings.
        sign_in(driver, "root", os.environ.get("SPUR_TEST_ROOT_PASSWORD", "root-password-123"))
        driver.find_element(By.LINK_TEXT, "Settings").click()
        assert "Landlock" in driver.find_element(By.ID, "job-isolation").text
        area = driver.find_element(By.ID, "allowlist")
        area.clear()
        area.send_keys("10.0.0.0/8")
        driver.find_element(By.XPATH, "//button[text()='Save changes']").click()
        wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Application settings saved successfully"))
        assert driver.find_element(By.ID, "allowlist").get_attribute("value") == "10.0.0.0/8"
        shot(driver, "13-admin-settings")
    finally:
        driver.quit()
    step("no javascript")
    no_javascript()
    step("every page at both widths")
    every_page_at_both_widths()
    print("browser flow OK")


def every_page_at_both_widths():
    """Every page a Maintainer and an administrator open: a screenshot at each width, and no
    page scrolls sideways on a phone (wide tables scroll inside their box)."""
    pages = ["/", f"/{PROJECT}", f"/{PROJECT.split('/')[0]}", f"/{PROJECT}/-/pipelines", f"/{PROJECT}/-/jobs",
             f"/{PROJECT}/-/releases", f"/{PROJECT}/-/pipeline_schedules", f"/{PROJECT}/-/pipeline_schedules/new",
             f"/{PROJECT}/-/environments",
             f"/{PROJECT}/-/settings/ci_cd", f"/{PROJECT}/-/project_members", f"/{PROJECT}/-/hooks",
             "/-/user_settings/personal_access_tokens", "/no/such/page"]
    admin_pages = ["/admin", "/admin/users", "/admin/runners", "/admin/application_settings/network"]
    for size, label in (("1366,900", "desktop"), ("390,844", "phone")):
        driver = browser(size=size)
        try:
            for who, password, paths in (("mia", "password123", pages),
                                         ("root", os.environ.get("SPUR_TEST_ROOT_PASSWORD", "root-password-123"), admin_pages)):
                sign_in(driver, who, password)
                for path in paths:
                    driver.get(URL + path)
                    # One pipeline and one job page too, from their lists.
                    detail = {f"/{PROJECT}/-/pipelines": "/-/pipelines/", f"/{PROJECT}/-/jobs": "/-/jobs/"}.get(path)
                    links = driver.find_elements(By.CSS_SELECTOR, f"table.list a[href*='{detail}']") if detail else []
                    extra = [links[0].get_attribute("href")] if links else []
                    if extra and detail == "/-/pipelines/":
                        extra.append(extra[0] + "/test_report")
                    for target in [URL + path] + extra:
                        driver.get(target)
                        name = target[len(URL):].strip("/").replace("/", "_").replace("-", "") or "home"
                        shot(driver, f"30-{label}-{who}-{name}")
                        if label == "phone":
                            wide = driver.execute_script(
                                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                            assert wide[0] <= wide[1] + 1, f"{target} scrolls sideways at 390 px: {wide}"
        finally:
            driver.quit()


def no_javascript():
    """Without scripts, on a phone: values are revealed, and the raw log opens with the session."""
    driver = browser(javascript=False, size="390,844")
    try:
        sign_in(driver, "mia")
        driver.get(f"{URL}/{PROJECT}/-/settings/ci_cd")
        token = driver.find_elements(By.CSS_SELECTOR, ".revealed.token")[0]
        assert not token.is_displayed(), "masked until revealed"
        driver.find_element(By.CSS_SELECTOR, "[data-reveal=trigger-tokens]").click()
        wait(driver, lambda d: token.is_displayed())
        shot(driver, "20-no-js-revealed-phone")
        driver.get(f"{URL}/{PROJECT}/-/jobs")
        job = driver.find_element(By.CSS_SELECTOR, "a[href*='/-/jobs/']").get_attribute("href")
        driver.get(job.split("#")[0].rstrip("/") + "/raw")
        assert "Running with spur" in driver.find_element(By.TAG_NAME, "body").text, "the raw log opens with the session"
        driver.get(f"{URL}/{PROJECT}")
        assert f"{URL}/{PROJECT}.git" in driver.page_source, "the project's home"
        shot(driver, "21-project-home-phone")
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        import traceback

        traceback.print_exc()
        # Selenium's messages end in the driver's native stack: the first line says what failed,
        # and stdout's last lines are what a failing test shows.
        print(f"failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        sys.exit(1)
