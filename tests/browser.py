"""The playground in a real browser: Debian's Chromium driven by Playwright for Python,
headless (`playwright install` would download a browser; scripts/setup.sh --dev installs
Debian's). Helpers the browser tests share; their fixtures are in tests/conftest.py."""

import json

from playwright.sync_api import Page, expect

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 120_000  # a generation or a job on a loaded 2-core machine


def open_playground(page: Page, url: str, api_key: str = "", admin_token: str = "") -> None:
    """Load the page and, when given, enter the API key and the admin token as a user does."""
    page.goto(f"{url}/playground")
    if api_key or admin_token:
        expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=TIMEOUT_MS)
        page.fill("#api-key", api_key)
        page.fill("#admin-token", admin_token)
        page.get_by_role("button", name="Use", exact=True).click()
    expect(page.locator("#mixture-name")).not_to_be_empty(timeout=TIMEOUT_MS)
    if admin_token:
        expect(page.get_by_role("tab", name="Jobs")).to_be_visible(timeout=TIMEOUT_MS)


def compare_form(page: Page):
    return page.locator("#panel-compare form")


def set_sampling(panel, max_tokens: int, extra: dict | None = None) -> None:
    panel.get_by_label("Max tokens").fill(str(max_tokens))
    panel.get_by_label("More request fields (JSON)").fill(json.dumps(extra) if extra else "")


def answer_cards(page: Page, panel: str, count: int):
    """The panel's answer cards once every one has finished and been scored."""
    cards = page.locator(f"#panel-{panel} .answer-card")
    expect(cards).to_have_count(count, timeout=TIMEOUT_MS)
    for n in range(count):
        expect(cards.nth(n)).to_have_attribute("data-scored", "true", timeout=TIMEOUT_MS)
    return cards


def confirm(page: Page) -> None:
    """Confirm the page's confirmation dialog (a <dialog>, not window.confirm)."""
    page.locator("#confirm-ok").click()


def wait_for_job(page: Page, kind: str) -> str:
    """The job of this kind the jobs panel follows, once it has succeeded; returns its id."""
    expect(page.locator("#job-view h2")).to_contain_text(f"{kind} job", timeout=TIMEOUT_MS)
    phase = page.locator("#job-view .phase")
    expect(phase).to_have_attribute("data-phase", "succeeded", timeout=TIMEOUT_MS * 3)
    return page.locator("#job-view h2").inner_text().split()[-1]
