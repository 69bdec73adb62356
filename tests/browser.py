"""Debian's Chromium driven by Playwright, as the browser tests and anything else that drives the hub's pages
use it (Playwright's own browser download is not used: the machines have /usr/bin/chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(
    tmp_dir: Path,
    *,
    ignore_https_errors: bool = False,
    extra_args: list[str] | None = None,
    locale: str | None = None,
) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) in tmp_dir; extra_args such as --host-resolver-rules; locale: the
    browser's language (its Accept-Language and navigator.language), e.g. "fr-CA"."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_dir),
            executable_path=CHROMIUM,
            args=[*CHROMIUM_FLAGS, *(extra_args or [])],
            viewport={"width": 1280, "height": 800},
            ignore_https_errors=ignore_https_errors,
            locale=locale,
        )
        try:
            yield context
        finally:
            context.close()


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


__all__ = ["chromium", "expect", "log_in", "submit_form", "watch_progress"]
