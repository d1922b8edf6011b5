#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, headless, driven by chromedriver through Selenium.

For each case (no tokens file: loopback callers are admin; a tokens file: the page must ask for a token) it starts
sriovd on a fresh simulated host, loads /ui/, finds every PF and every VF's status as the API reports them,
allocates a VF with curl and sees its cell turn held within 2 s without a reload, releases it and sees it free
again, checks keyboard movement and the detail panel, and that the page logged no JavaScript error. Then, on a
simulated host with 4,096 VFs (16 PFs x 256), it measures the first paint of the whole grid (must be under 1 s).

usage: scripts/check-ui.py [--bin PATH] [--screenshot FILE] [--skip-large]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message):
    print("check-ui: FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def wait_for(what, condition, timeout=10.0, interval=0.05):
    """Polls condition() until it returns a truthy value; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            fail(f"waited {timeout} s in vain for {what}")
        time.sleep(interval)


class Daemon:
    """sriovd serving a simulated host on 127.0.0.1 (a port the kernel picks)."""

    def __init__(self, binary, host_dir, tokens_file=None):
        args = [binary, "serve", "--simulate", host_dir, "--listen", "127.0.0.1:0", "--no-access-log",
                "--log-level", "warning", "--health-interval", "1"]
        if tokens_file:
            args += ["--tokens", tokens_file]
        self.log = open(host_dir.rstrip("/") + ".log", "w")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"http://(\S+)", line)
        if not match:
            fail(f"sriovd did not say where it listens: {line!r}")
        self.base = "http://" + match.group(1)
        wait_for("/readyz", lambda: self.ready(), timeout=30)

    def ready(self):
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                return response.status == 200
        except Exception:
            return False

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


def curl(daemon, method, path, token=None, body=None):
    args = ["curl", "-s", "-S", "-X", method, "-w", "\n%{http_code}", daemon.base + path]
    if token:
        args += ["-H", "Authorization: Bearer " + token]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    text, _, status = out.rpartition("\n")
    return int(status), (json.loads(text) if text.strip() else None)


def make_token(binary, name, role):
    out = subprocess.run([binary, "token", "create", name, "--role", role], check=True, capture_output=True,
                         text=True).stdout
    token = re.search(r"^(sriovd_\S+)$", out, re.M).group(1)
    line = re.search(rf"^({re.escape(name)} {role} [0-9a-f]{{64}})$", out, re.M).group(1)
    return token, line


def make_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--disable-extensions", "--no-first-run"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def expected_status(vf):
    holder = vf.get("allocation")
    if (holder and holder["state"] == "dirty") or "dirty" in vf["health"]["reasons"]:
        return "dirty"
    return "held" if holder else "free"


def cell_status(browser, address):
    return browser.execute_script(
        "const c = document.querySelector(`.vf[data-address=\"${arguments[0]}\"]`); return c && c.dataset.status;",
        address)


def shown_count(browser, selector):
    """The number in a capacity or quota cell (`selector` names a td with data-count), or None while absent."""
    text = browser.execute_script(
        "const c = document.querySelector(arguments[0]); return c && c.textContent;", selector)
    match = re.match(r"\d+", text or "")
    return int(match.group(0)) if match else None


HOST_HELD = '#capacity-body tr[data-key="host"] td[data-count="held"]'
QUOTA_USED = '#quota-rows tr[data-prefix="ui-"] td[data-count="used"]'


def check_capacity_shown(browser, daemon, token, label, quota):
    """The capacity panel's host row and the quota row say what GET /capacity and GET /quotas say, within 2 s."""
    _, capacity = curl(daemon, "GET", "/capacity", token=token)
    held = capacity["host"]["held"]
    wait_for(f"{label}: capacity held {held} on the page", lambda: shown_count(browser, HOST_HELD) == held,
             timeout=2.0, interval=0.02)
    if quota:
        _, quotas = curl(daemon, "GET", "/quotas", token=token)
        used = [q["used"] for q in quotas["items"] if q["owner_prefix"] == "ui-"][0]
        wait_for(f"{label}: quota ui- used {used} on the page", lambda: shown_count(browser, QUOTA_USED) == used,
                 timeout=2.0, interval=0.02)
    return held


def javascript_errors(browser, allow_401_before):
    """SEVERE browser log entries and errors the page caught, except 401s of requests made without a token."""
    errors = []
    for entry in browser.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        if allow_401_before and "401" in entry["message"] and entry["timestamp"] / 1000 < allow_401_before:
            continue
        errors.append(entry["message"])
    errors += browser.execute_script("return window.__sriovdErrors || []")
    return errors


def check_case(binary, browser, with_tokens, screenshot):
    label = "with tokens" if with_tokens else "without tokens"
    work = tempfile.mkdtemp(prefix="sriovd-ui-")
    tokens_file = None
    reader = operator = None
    if with_tokens:
        reader, reader_line = make_token(binary, "ui-reader", "reader")
        operator, operator_line = make_token(binary, "ui-operator", "operator")
        tokens_file = os.path.join(work, "tokens")
        with open(tokens_file, "w") as f:
            f.write(reader_line + "\n" + operator_line + "\n")
    daemon = Daemon(binary, os.path.join(work, "host"), tokens_file)
    try:
        browser.get("about:blank")  # away from the previous case's page, whose stream would log its daemon's end
        browser.get_log("browser")  # start from an empty log
        browser.get(daemon.base + "/ui/")
        logged_in_at = None
        if with_tokens:
            form = wait_for("the token form", lambda: browser.find_element(By.ID, "login").is_displayed()
                            and browser.find_element(By.ID, "login"))
            status, _ = curl(daemon, "GET", "/pfs")
            if status != 401:
                fail(f"{label}: GET /pfs without a token answered {status}, not 401")
            logged_in_at = time.time()
            browser.find_element(By.ID, "token").send_keys(reader)
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            stored = browser.execute_script("return sessionStorage.getItem('sriovd.token')")
            local = browser.execute_script("return localStorage.length")
            if stored != reader or local != 0:
                fail(f"{label}: the token must be in sessionStorage only (session {stored!r}, local {local})")
        wait_for("the page to load", lambda: browser.execute_script("return document.body.dataset.ready"))
        wait_for("the live stream", lambda: browser.find_element(By.ID, "conn").text == "live")

        if not with_tokens:
            # VFs created while the page is open appear without a reload: 16 on the E810, and 2 NVMe VFs that no
            # driver takes (shown unavailable, "no_driver").
            for pf, count in [("0000:5e:00.0", 16), ("0000:d8:00.0", 2)]:
                status, body = curl(daemon, "POST", f"/pfs/{pf}/vfs", body={"count": count})
                if status not in (200, 201):
                    fail(f"{label}: POST /pfs/{pf}/vfs answered {status}: {body}")
            _, vfs = curl(daemon, "GET", "/vfs")
            wait_for("the new VFs on the page", lambda: len(browser.find_elements(By.CSS_SELECTOR, ".vf"))
                     == len(vfs["items"]), timeout=3)
            unavailable = browser.find_elements(By.CSS_SELECTOR, '.vf[data-health="unavailable"]')
            if len(unavailable) != 2 or not all(c.text.endswith("!") for c in unavailable):
                fail(f"{label}: the 2 NVMe VFs without a driver are not shown unavailable")

        # Every PF and every VF status as the API has them.
        _, pfs = curl(daemon, "GET", "/pfs", token=reader)
        _, vfs = curl(daemon, "GET", "/vfs", token=reader)
        for pf in pfs["items"]:
            section = browser.find_element(By.ID, "pf-" + pf["address"])
            if "health " + pf["health"]["status"] not in section.text:
                fail(f"{label}: PF {pf['address']} does not show its health as text")
        cells = browser.find_elements(By.CSS_SELECTOR, ".vf")
        if len(cells) != len(vfs["items"]) or not cells:
            fail(f"{label}: {len(cells)} VF cells for {len(vfs['items'])} VFs")
        for vf in vfs["items"]:
            shown = cell_status(browser, vf["address"])
            if shown != expected_status(vf):
                fail(f"{label}: VF {vf['address']} shows {shown}, the API says {expected_status(vf)}")
            text = browser.find_element(By.CSS_SELECTOR, f'.vf[data-address="{vf["address"]}"]')
            if vf["health"]["status"] not in text.get_attribute("aria-label"):
                fail(f"{label}: VF {vf['address']} has no health in its text")
        print(f"check-ui: {label}: {len(pfs['items'])} PFs and {len(cells)} VF statuses match the API")

        # Capacity and quotas: a quota set with curl appears without a reload (loopback callers are admin here).
        with_quota = not with_tokens
        if with_quota:
            status, body = curl(daemon, "PUT", "/quotas/ui-", body={"max_vfs": 2})
            if status != 200:
                fail(f"{label}: PUT /quotas/ui- answered {status}: {body}")
        held_before = check_capacity_shown(browser, daemon, reader, label, with_quota)

        # Allocate with curl: the cell turns held without a reload.
        marker = browser.execute_script("window.__noReload = 1; return 1")
        status, allocation = curl(daemon, "POST", "/allocations", token=operator,
                                  body={"owner": "ui-check", "pf": "0000:3b:00.0", "labels": {"app": "ui"}})
        if status != 201:
            fail(f"{label}: POST /allocations answered {status}: {allocation}")
        started = time.monotonic()
        wait_for("the allocated VF to show held", lambda: cell_status(browser, allocation["vf"]) == "held",
                 timeout=2.0, interval=0.02)
        held_after = time.monotonic() - started
        if browser.execute_script("return window.__noReload") != marker:
            fail(f"{label}: the page reloaded")
        wait_for("the allocation in the table", lambda: "ui-check" in browser.find_element(By.ID, "allocations").text,
                 timeout=2.0)
        print(f"check-ui: {label}: {allocation['vf']} shown held {held_after * 1000:.0f} ms after the 201")
        if check_capacity_shown(browser, daemon, reader, label, with_quota) != held_before + 1:
            fail(f"{label}: GET /capacity did not count the new allocation as held")
        print(f"check-ui: {label}: capacity{' and quota' if with_quota else ''} shown as the API counts them")

        # The detail panel, by click, with holder, labels and traffic.
        browser.find_element(By.CSS_SELECTOR, f'.vf[data-address="{allocation["vf"]}"]').click()
        wait_for("the VF detail", lambda: "ui-check" in browser.find_element(By.ID, "detail-body").text
                 and "app=ui" in browser.find_element(By.ID, "detail-body").text
                 and "Traffic" in browser.find_element(By.ID, "detail-body").text, timeout=5)
        if screenshot:
            browser.save_screenshot(screenshot)
            print(f"check-ui: screenshot saved to {screenshot}")

        # Keyboard: the arrow keys move between cells.
        first = browser.find_element(By.CSS_SELECTOR, "#pf-list .grid .vf")
        first.send_keys(Keys.ARROW_RIGHT)
        focused = browser.execute_script("return document.activeElement.dataset.address")
        second = browser.find_elements(By.CSS_SELECTOR, "#pf-list .grid .vf")[1].get_attribute("data-address")
        if focused != second:
            fail(f"{label}: ArrowRight moved focus to {focused}, not {second}")

        status, _ = curl(daemon, "DELETE", "/allocations/" + allocation["id"], token=operator)
        if status != 204:
            fail(f"{label}: DELETE answered {status}")
        wait_for("the released VF to show free", lambda: cell_status(browser, allocation["vf"]) == "free",
                 timeout=2.0, interval=0.02)
        print(f"check-ui: {label}: released, shown free again")
        check_capacity_shown(browser, daemon, reader, label, with_quota)

        errors = javascript_errors(browser, logged_in_at)
        if errors:
            fail(f"{label}: the page logged errors: {errors}")
        print(f"check-ui: {label}: no JavaScript error logged")
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


def check_large(binary, browser):
    work = tempfile.mkdtemp(prefix="sriovd-ui-large-")
    host = os.path.join(work, "host")
    subprocess.run([binary, "simulate", "create", host, "--pfs", "16", "--vfs-per-pf", "256"], check=True,
                   capture_output=True)
    daemon = Daemon(binary, host)
    try:
        browser.get("about:blank")
        browser.get_log("browser")
        figures = []
        for attempt in range(3):
            browser.get(daemon.base + "/ui/")
            wait_for("the large page", lambda: browser.execute_script(
                "return performance.getEntriesByName('sriovd-painted').length"), timeout=20)
            painted = browser.execute_script("return performance.getEntriesByName('sriovd-painted')[0].startTime")
            count = browser.execute_script("return document.querySelectorAll('.vf').length")
            if count != 4096:
                fail(f"large host: {count} VF cells, not 4096")
            figures.append(painted)
        figures.sort()
        median = figures[1]
        print(f"check-ui: 4,096 VFs: whole grid painted {', '.join(f'{f:.0f}' for f in figures)} ms after "
              f"navigation start (median {median:.0f} ms)")
        if median >= 1000:
            fail(f"first paint on 4,096 VFs took {median:.0f} ms (must be under 1 s)")
        errors = javascript_errors(browser, None)
        if errors:
            fail(f"large host: the page logged errors: {errors}")
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", help="the sriovd binary (default: swift build's)")
    parser.add_argument("--screenshot", help="save a screenshot of the page (without tokens) here")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    binary = args.bin
    if not binary:
        path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout.strip()
        binary = os.path.join(path, "sriovd")
    browser = make_browser()
    try:
        check_case(binary, browser, with_tokens=False, screenshot=args.screenshot)
        check_case(binary, browser, with_tokens=True, screenshot=None)
        if not args.skip_large:
            check_large(binary, browser)
    finally:
        browser.quit()
    print("check-ui: all passed")


if __name__ == "__main__":
    main()
