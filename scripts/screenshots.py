"""Walk through the demo site in a real browser (Debian's Chromium, driven by Playwright) and save screenshots
of what a user sees: login page, Server Options form, JupyterLab with a computed cell.

    .venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000] [--out docs/screenshots]

Needs the demo site (./scripts/demo.sh) and `apt-get install chromium`; each step asserts what it expects.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def stop_server(url: str, user: str, password: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from hubclient import HubClient

    client = HubClient(url)
    client.login(user, password)
    client.create_token("screenshots")
    if client.user_model().get("servers", {}).get(""):
        client.stop_server()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs/screenshots", type=Path)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="alice-demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 800}
        )
        page = browser.new_page()
        page.goto(f"{args.url}/hub/login")
        expect(page.locator("#username_input")).to_be_visible()
        page.screenshot(path=args.out / "1-login.png")

        stop_server(args.url, args.user, args.password)  # start from a stopped server, as a new user would
        page.fill("#username_input", args.user)
        page.fill("#password_input", args.password)
        page.click("#login_submit")
        page.wait_for_url(re.compile(r".*/hub/spawn.*"))
        expect(page.locator("#spawn_form")).to_be_visible()
        expect(page.locator("label[for=cores]")).to_have_text("Cores")
        page.screenshot(path=args.out / "2-server-options.png", full_page=True)

        # The browser itself refuses 64 (max=4); a crafted request is refused by the hub: turn the browser's
        # check off to see the server-side message a user gets.
        page.fill("#cores", "64")
        page.evaluate("document.getElementById('spawn_form').noValidate = true")
        page.click("#spawn_form button[type=submit]")
        expect(page.locator(".spawn-error-msg")).to_contain_text("Cores: 64 is above the maximum of 4")
        page.screenshot(path=args.out / "3-form-error.png", full_page=True)

        page.fill("#cores", "1")
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(re.compile(rf".*/user/{args.user}/lab.*"), timeout=180_000)
        page.goto(f"{args.url}/user/{args.user}/lab?reset")  # a fresh workspace: the launcher, no old tabs
        page.get_by_text("Python 3 (ipykernel)").first.wait_for(timeout=60_000)
        page.screenshot(path=args.out / "4-jupyterlab.png")

        news = page.get_by_role("button", name="No")
        if news.count():
            news.first.click()  # "get notified about official Jupyter news?": no
        page.locator(".jp-LauncherCard").first.click()  # Notebook: Python 3 (ipykernel)
        cell = page.locator(".jp-Cell .cm-content").first
        cell.wait_for(timeout=60_000)
        cell.click()
        page.keyboard.type("1+1")
        page.keyboard.press("Shift+Enter")
        expect(page.locator(".jp-OutputArea-output").first).to_have_text("2", timeout=60_000)
        page.screenshot(path=args.out / "5-notebook-1plus1.png")

        # Stop the server from the hub's control panel, as a user would.
        page.goto(f"{args.url}/hub/home")
        page.click("#stop")
        expect(page.locator("#start")).to_be_visible(timeout=60_000)
        browser.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
