"""Screenshots of every playground panel, taken by using the page as a user does against a
running server (the README's and docs/playground.md's pictures come from the SmolLM2 demo):

    MPO_ADMIN_TOKEN=... .venv/bin/mpo-serve serve &
    .venv/bin/python scripts/playground_screenshots.py --server http://localhost:8000 --out docs/playground

It compares four settings, casts a blind vote, sweeps between the two policies, runs a small fit,
a small eval and a pair eval from the jobs panel (so it writes to the server's weight store) and
shows the weight sets; `--only vote pairs` takes some of them. Needs the dev set-up (Playwright
for Python and Debian's Chromium: scripts/setup.sh --dev).
"""

import argparse
import os
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
PANELS = ["compare", "vote", "sweep", "fit", "eval", "pairs", "weight-sets"]
WAIT_MS = 900_000  # a fit or an eval of the 135M demo on two cores


def run_compare(page: Page, out: Path, policies: list[str]) -> None:
    form = page.locator("#panel-compare form")
    form.get_by_label("Temperature").fill("0")
    form.get_by_label("Max tokens").fill("60")
    form.get_by_role("button", name="Add a column").click()
    form.get_by_role("button", name="Add a column").click()
    policies = page.evaluate(
        "() => [...document.querySelectorAll('#panel-compare .slider .policy')].map(n => n.textContent)"
    )
    for n, component in ((2, policies[-1]), (3, "ref")):
        column = form.locator(".setting").nth(n)
        column.get_by_label(f"Column {n + 1}: generate with").select_option("component")
        column.get_by_label("Component").select_option(component)
    form.get_by_role("button", name="Compare", exact=True).click()
    cards = page.locator("#panel-compare .answer-card")
    for n in range(4):
        expect(cards.nth(n)).to_have_attribute("data-scored", "true", timeout=WAIT_MS)
    page.screenshot(path=out / "compare.png", full_page=True)


def run_vote(page: Page, out: Path) -> None:
    """A blind vote: two answers as A and B, the ballot, then the vote recorded and the settings shown."""
    form = page.locator("#panel-compare form")
    form.get_by_label("Blind vote").check()
    form.get_by_label("Temperature").fill("0.7")
    form.get_by_label("Max tokens").fill("60")
    form.get_by_role("button", name="Compare", exact=True).click()
    ballot = page.locator("#panel-compare .ballot")
    expect(ballot).to_be_visible(timeout=WAIT_MS)
    ballot.get_by_role("button", name="A is better").click()
    expect(ballot).to_have_attribute("data-voted", re.compile(r"\d+"), timeout=WAIT_MS)
    page.screenshot(path=out / "vote.png", full_page=True)
    form.get_by_label("Blind vote").uncheck()


def run_sweep(page: Page, out: Path) -> None:
    page.get_by_role("tab", name="Sweep").click()
    panel = page.locator("#panel-sweep")
    panel.get_by_label("Max tokens").fill("60")
    panel.get_by_role("button", name="Sweep", exact=True).click()
    cards = panel.locator(".answer-card")
    expect(cards).to_have_count(5)
    for n in range(5):
        expect(cards.nth(n)).to_have_attribute("data-scored", "true", timeout=WAIT_MS)
    page.screenshot(path=out / "sweep.png", full_page=True)


def run_job(page: Page, kind: str, prompts: str, first: int, options: dict[str, str], check: tuple = ()) -> None:
    page.get_by_role("tab", name="Jobs").click()
    jobs = page.locator("#panel-jobs")
    jobs.get_by_label("Job", exact=True).select_option(kind)
    jobs.get_by_label("Prompts", exact=True).select_option(prompts)
    jobs.get_by_label("Use the first").fill(str(first))
    fieldset = jobs.locator("fieldset", has_text="Fit options" if kind == "fit" else "Eval options")
    for label, value in options.items():
        fieldset.get_by_label(label, exact=True).fill(value)
    for label in check:
        fieldset.get_by_label(label).check()
    jobs.get_by_role("button", name="Start").click()
    expect(page.locator("#job-view h2")).to_contain_text(f"{kind} job", timeout=WAIT_MS)
    phase = page.locator("#job-view .phase")
    expect(phase).to_have_attribute("data-phase", "succeeded", timeout=WAIT_MS)
    page.wait_for_timeout(500)


def page_y(locator) -> float:
    """Where an element starts on the page (not in the viewport, which scrolls)."""
    return locator.evaluate("e => e.getBoundingClientRect().top + window.scrollY")


def clip(top: float, bottom: float) -> dict:
    """The page's full width between two heights, at most 1600 pixels of it."""
    return {"x": 0, "y": top - 10, "width": 1400, "height": min(bottom - top + 20, 1600)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://localhost:8000")
    parser.add_argument("--token", default=os.environ.get("MPO_ADMIN_TOKEN"), help="admin token (MPO_ADMIN_TOKEN)")
    parser.add_argument("--out", type=Path, default=Path("docs/playground"))
    parser.add_argument("--only", nargs="+", choices=PANELS, default=PANELS, help="which pictures to take")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    only = set(args.only)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{args.server}/playground")
        expect(page.locator("#mixture-name")).not_to_be_empty()
        if "compare" in only:
            run_compare(page, args.out, httpx.get(f"{args.server}/v1/mixture").json()["policies"])
        if "vote" in only:
            run_vote(page, args.out)
        if "sweep" in only:
            run_sweep(page, args.out)
        page.fill("#admin-token", args.token)
        page.get_by_role("button", name="Use", exact=True).click()
        if "fit" in only:
            fit = {"Samples per prompt": "4", "Max tokens": "32", "Iterations": "500", "Batch size": "8"}
            run_job(page, "fit", "fit", 16, fit)
            page.screenshot(path=args.out / "jobs-fit.png", full_page=True)
            page.get_by_role("button", name="Activate weight set").click()
            page.locator("#confirm-ok").click()
        if "eval" in only:
            run_job(page, "eval", "eval", 16, {"Max tokens": "48"}, check=("uniform weights",))
            answers = page.locator("#eval-answers")
            top, bottom = page_y(page.locator("#job-view h2")), page_y(answers)
            page.screenshot(path=args.out / "jobs-eval.png", full_page=True, clip=clip(top, bottom - 60))
            page.locator("#answers-candidate").select_option(index=2)  # one candidate's answers
            answers.locator("th button").first.click()  # sorted by the first objective's reward
            top = page_y(page.locator("#answers-candidate"))
            page.screenshot(path=args.out / "jobs-eval-answers.png", full_page=True, clip=clip(top - 40, top + 1600))
        if "pairs" in only:
            run_job(page, "eval", "pairs_heldout", 0, {}, check=("uniform weights",))
            top = page_y(page.locator("#job-view h2"))
            page.screenshot(path=args.out / "jobs-pairs.png", full_page=True, clip=clip(top, top + 1100))
        if "weight-sets" in only:
            page.get_by_role("tab", name="Weight sets").click()
            expect(page.locator("#weight-sets tbody tr").first).to_be_visible()
            page.screenshot(path=args.out / "weight-sets.png", full_page=True)
        browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
