"""Debian's Chromium driven by Playwright (pytest-playwright's fixtures, configured in molecule/default/conftest.py),
and the steps the browser tests share. Playwright's own browser download is not used: the machines have
/usr/bin/chromium."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

CHROMIUM = "/usr/bin/chromium"
# (pytest-playwright asks for headless itself.)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def log_in(page: Page, base_url: str, user: str, password: str) -> None:
    page.goto(f"{base_url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")


def watch_progress(page: Page, until: re.Pattern[str], timeout: float) -> list[str]:
    """The spawn page's event log, read until the URL matches ``until`` (or the spawn failed); every message."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until.search(page.url):
        try:
            for line in page.locator("#progress-log .progress-log-event").all_text_contents():
                if line.strip() and line.strip() not in seen:
                    seen.append(line.strip())
        except Exception:  # the page navigated away while being read
            pass
        if any("Spawn failed" in line for line in seen):
            break
        time.sleep(0.2)
    return seen


def submit_form(page: Page, **fields: str) -> None:
    """Fill the Server Options form (inputs and selects by id) and start."""
    for key, value in fields.items():
        field = page.locator(f"#{key}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click("#spawn_form button[type=submit]")


__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "expect", "log_in", "submit_form", "watch_progress"]
