"""The playground in headless Chromium against a real server of the tests' mixture: what the
page shows is what the API answers (generation, fits, evals), columns stream at once, model
output is text, and the admin panels need the admin token."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser import (
    TIMEOUT_MS,
    answer_cards,
    compare_form,
    confirm,
    open_playground,
    set_sampling,
    wait_for_job,
)
from tests.server_process import ADMIN_TOKEN

PROMPT = "What do you think about Monday mornings?"


def chat_answer(http, request: dict, max_tokens: int) -> str:
    body = {
        **request,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0,
        "seed": 0,
        "max_tokens": max_tokens,
    }
    response = http.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]


def test_the_page_and_its_files_come_with_a_policy_that_allows_no_inline_script(http):
    for path in ("/playground", "/playground/static/js/main.js", "/playground/static/vendor/chart.umd.min.js"):
        response = http.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert http.get("/", follow_redirects=False).headers["location"] == "/playground"
    assert http.get("/playground/static/nothing.js").status_code == 404


def test_moving_a_slider_then_compare_answers_as_the_api_does_for_those_weights(page, checkpoint_server, http):
    open_playground(page, checkpoint_server.url)
    form = compare_form(page)
    form.get_by_role("button", name="Remove the last column").click()
    set_sampling(form, max_tokens=24)
    slider = form.get_by_label("Column 1: weight of alpha")
    slider.focus()
    for _ in range(20):  # 0.50 -> 0.70, by keyboard as a user may
        page.keyboard.press("ArrowRight")
    form.get_by_role("button", name="Compare", exact=True).click()
    card = answer_cards(page, "compare", 1).first
    request = json.loads(card.get_attribute("data-request"))
    assert request["mixture"]["weights"] == pytest.approx({"alpha": 0.7, "beta": 0.3})
    shown = card.locator(".answer").inner_text()
    assert shown and shown == chat_answer(http, request, max_tokens=24)
    assert card.locator("[data-stat=finish]").inner_text() in {"length", "stop"}
    assert card.locator("[data-objective]").count() == 2  # alpha (sentiment), beta (concise)
    assert not page.problems


def test_four_columns_stream_at_once(page, checkpoint_server):
    open_playground(page, checkpoint_server.url)
    form = compare_form(page)
    form.get_by_role("button", name="Add a column").click()
    form.get_by_role("button", name="Add a column").click()
    expect(form.get_by_role("button", name="Add a column")).to_be_disabled()  # four at most
    set_sampling(form, max_tokens=400, extra={"ignore_eos": True})
    column = form.locator(".setting").nth(3)
    column.get_by_label("Column 4: generate with").select_option("component")
    column.get_by_label("Component").select_option("beta")
    # Judged by the order of the page's requests (each fires "requestfinished" once its stream is
    # over), not by when their tokens were shown: on the 2-core CI VM vLLM's spinning EngineCore
    # (bench.engine_affinity) can hold the browser back until every stream is over, and then all
    # four arrive at once.
    events = []
    page.on("request", lambda r: "/completions" in r.url and events.append("sent"))
    page.on("requestfinished", lambda r: "/completions" in r.url and events.append("finished"))
    form.get_by_role("button", name="Compare", exact=True).click()
    cards = answer_cards(page, "compare", 4)
    assert events[:4] == ["sent"] * 4, events  # all four sent before any finished
    assert cards.nth(3).locator("h3").inner_text() == "beta alone"
    assert not page.problems


def test_model_output_with_markup_is_shown_as_text_and_opens_no_dialog(page, checkpoint_server):
    markup = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    pattern = markup.replace("(", r"\(").replace(")", r"\)")
    open_playground(page, checkpoint_server.url)
    form = compare_form(page)
    form.get_by_role("button", name="Remove the last column").click()
    set_sampling(form, max_tokens=120, extra={"structured_outputs": {"regex": pattern}})
    form.get_by_role("button", name="Compare", exact=True).click()
    card = answer_cards(page, "compare", 1).first
    assert card.locator(".answer").inner_text() == markup
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have run by now
    assert not page.problems


def test_without_the_admin_token_the_admin_panels_are_absent_and_their_calls_401(page, checkpoint_server):
    open_playground(page, checkpoint_server.url)
    for name in ("weightsets", "jobs"):
        assert page.locator(f"#panel-{name}").count() == 0
        expect(page.locator(f"#tab-{name}")).to_be_hidden()
    calls = page.evaluate(
        """async () => Promise.all([
            fetch("/admin/weights/history"),
            fetch("/admin/jobs"),
            fetch("/admin/fit", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}),
            fetch("/admin/weights", {method: "PUT", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify({weights: {alpha: 1}})}),
        ].map((call) => call.then((r) => r.status)))"""
    )
    assert calls == [401, 401, 401, 401]
    page.fill("#admin-token", "not-the-token")
    page.get_by_role("button", name="Use", exact=True).click()
    expect(page.locator("#access-status")).to_have_text("admin token refused", timeout=TIMEOUT_MS)
    assert page.locator("#panel-jobs").count() == 0
    assert page.evaluate("() => JSON.stringify(localStorage)") == "{}"
    assert ADMIN_TOKEN not in page.url


def test_a_fit_started_from_the_page_shows_the_api_weights_and_activating_it_changes_the_defaults(
    page, checkpoint_server, admin
):
    open_playground(page, checkpoint_server.url, admin_token=ADMIN_TOKEN)
    page.get_by_role("tab", name="Jobs").click()
    jobs = page.locator("#panel-jobs")
    jobs.get_by_label("Job", exact=True).select_option("fit")
    jobs.get_by_label("Prompts", exact=True).select_option("fit")
    jobs.get_by_label("Use the first").fill("8")
    for label, value in {"Samples per prompt": 4, "Max tokens": 12, "Iterations": 200, "Batch size": 4}.items():
        jobs.locator("fieldset", has_text="Fit options").get_by_label(label, exact=True).fill(str(value))
    jobs.get_by_role("button", name="Start").click()
    job = wait_for_job(page, "fit")
    status = admin.get(f"/admin/fit/{job}").json()
    assert status["phase"] == "succeeded"
    shown = json.loads(page.locator("#fit-final").get_attribute("data-weights"))
    assert shown == pytest.approx(status["weights"])
    drawn = page.evaluate(
        """() => Object.fromEntries(Chart.getChart(document.querySelector("#job-view canvas")).data.datasets
              .filter((d) => d.label.startsWith("fitted ")).map((d) => [d.label.slice(7), d.data.at(-1).y]))"""
    )
    assert drawn == pytest.approx(status["weights"])
    page.get_by_role("button", name=f"Activate weight set {status['result_weight_set']}").click()
    confirm(page)
    page.get_by_role("tab", name="Weight sets").click()
    active = page.locator("#weight-sets tr[data-active=true]")
    expect(active).to_have_attribute("data-set", str(status["result_weight_set"]), timeout=TIMEOUT_MS)
    live = json.loads(page.locator("#live-defaults strong").get_attribute("data-weights"))
    assert live == pytest.approx(status["weights"])
    mixture = admin.get("/admin/mixture").json()
    assert mixture["active_weight_set"] == status["result_weight_set"]
    assert mixture["default_weights"] == pytest.approx(status["weights"])
    assert not page.problems


def test_an_eval_table_in_the_page_equals_the_api_result(page, checkpoint_server, admin):
    open_playground(page, checkpoint_server.url, admin_token=ADMIN_TOKEN)
    page.get_by_role("tab", name="Jobs").click()
    jobs = page.locator("#panel-jobs")
    jobs.get_by_label("Job", exact=True).select_option("eval")
    jobs.get_by_label("Use the first").fill("4")
    options = jobs.locator("fieldset", has_text="Eval options")
    options.get_by_label("Max tokens", exact=True).fill("12")
    jobs.get_by_role("button", name="Start").click()
    job = wait_for_job(page, "eval")
    result = admin.get(f"/admin/eval/{job}").json()["result"]
    assert [c["name"] for c in result["candidates"]] == ["ref", "test-mix", "alpha", "beta"]
    rows = page.locator("#eval-summary tbody tr")
    expect(rows).to_have_count(len(result["candidates"]))
    for n, candidate in enumerate(result["candidates"]):
        row = rows.nth(n)
        assert row.get_attribute("data-candidate") == candidate["name"]
        assert row.locator("[data-min]").inner_text() == f"{100 * candidate['min']['win_rate']:.1f}"
        for objective, value in candidate["objectives"].items():
            win = value["win_rate"]
            expected = f"{100 * win['mean']:.1f} [{100 * win['low']:.1f}, {100 * win['high']:.1f}]"
            assert row.locator(f"[data-objective={objective}]").inner_text() == expected
    answers = [json.loads(line) for line in admin.get(f"/admin/eval/{job}/answers.jsonl").text.splitlines()]
    table = page.locator("#eval-answers tbody tr")
    expect(table).to_have_count(len(answers))
    shown = [(r.get_attribute("data-candidate"), r.locator(".answer-cell").inner_text()) for r in table.all()]
    assert shown == [(a["candidate"], a["response"]) for a in answers]
    page.locator("#answers-candidate").select_option("alpha")
    expect(table).to_have_count(sum(a["candidate"] == "alpha" for a in answers))
    page.locator("#eval-answers").get_by_role("button", name="beta").click()  # sort by beta's reward
    shown = [float(r.locator("[data-objective=beta]").inner_text()) for r in table.all()]
    expected = sorted((a["rewards"]["beta"] for a in answers if a["candidate"] == "alpha"), reverse=True)
    assert shown == pytest.approx(expected, abs=1e-3)
    assert not page.problems


def test_a_file_of_pairs_is_a_pair_eval_whose_table_equals_the_api_and_a_pair_fit(
    page, checkpoint_server, admin, tmp_path
):
    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"prompt": prompt, "chosen": chosen, "rejected": rejected, "objective": objective}
        for prompt in ("Life is", "Never trust")
        for chosen, rejected, objective in ((" good.", " hard.", "alpha"), (" short", " a long one", "beta"))
    ]
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    open_playground(page, checkpoint_server.url, admin_token=ADMIN_TOKEN)
    page.get_by_role("tab", name="Jobs").click()
    jobs = page.locator("#panel-jobs")
    jobs.get_by_label("Job", exact=True).select_option("eval")
    jobs.get_by_label("Prompts", exact=True).select_option("upload")
    jobs.get_by_label("JSONL file").set_input_files(str(pairs))
    jobs.get_by_role("button", name="Start").click()
    job = wait_for_job(page, "eval")
    result = admin.get(f"/admin/eval/{job}").json()["result"]
    assert result["kind"] == "pairs"
    rows = page.locator("#eval-summary tbody tr")
    expect(rows).to_have_count(len(result["candidates"]))
    for n, candidate in enumerate(result["candidates"]):
        row = rows.nth(n)
        assert row.locator("[data-min]").inner_text() == f"{100 * candidate['min']['accuracy']:.1f}"
        for objective, value in candidate["objectives"].items():
            accuracy = value["accuracy"]
            expected = f"{100 * accuracy['mean']:.1f} [{100 * accuracy['low']:.1f}, {100 * accuracy['high']:.1f}]"
            assert row.locator(f"[data-objective={objective}]").inner_text() == expected
    jobs.get_by_label("Job", exact=True).select_option("fit")  # the same file, fitted: the pair fit
    jobs.get_by_role("button", name="Start").click()
    fit = wait_for_job(page, "fit")
    status = admin.get(f"/admin/fit/{fit}").json()
    assert status["method"] == "pairs" and status["phase"] == "succeeded"
    expect(page.locator("#fit-final")).to_contain_text("pairs fit")
    assert not page.problems


def test_weights_stay_on_the_simplex_for_two_to_eight_policies_and_three_get_a_triangle(page, checkpoint_server):
    """The weights editor's logic in the browser that runs it: every slider move keeps the
    weights non-negative, summing to 1, with the moved one where it was put; the triangle's
    corners are the three policies alone and arrow keys keep the point on the triangle."""
    open_playground(page, checkpoint_server.url)
    moves = page.evaluate(
        """async () => {
          const { moveOne } = await import("/playground/static/js/simplex.js");
          const seen = [];
          for (let k = 2; k <= 8; k++) {
            const policies = Array.from({ length: k }, (_, i) => `p${i}`);
            let weights = Object.fromEntries(policies.map((p) => [p, 1 / k]));
            for (let step = 0; step < 60; step++) {
              const moved = policies[(step * 7) % k], value = ((step * 37) % 101) / 100;
              weights = moveOne(weights, policies, moved, value);
              seen.push([k, Object.values(weights), weights[moved], value]);
            }
          }
          return seen;
        }"""
    )
    assert len(moves) == 7 * 60
    for _, weights, moved, value in moves:
        assert sum(weights) == pytest.approx(1) and min(weights) >= 0 and moved == pytest.approx(value)
    triangle = page.evaluate(
        """async () => {
          const { WeightsEditor } = await import("/playground/static/js/simplex.js");
          const editor = new WeightsEditor(["a", "b", "c"], { a: 1, b: 1, c: 1 }, { label: "three" });
          document.body.append(editor.element);
          const corners = [[90, 12], [12, 160], [168, 160]].map(([x, y]) => editor.fromPoint(x, y));
          const pad = editor.element.querySelector("svg[role=slider]");
          const walk = [];
          const keys = ["ArrowLeft", "ArrowLeft", "ArrowDown", "ArrowRight", "ArrowUp"];
          for (const key of keys.flatMap((k) => Array(30).fill(k))) {
            pad.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
            walk.push(Object.values(editor.weights));
          }
          const sliders = editor.element.querySelectorAll("input[type=range]").length;
          return { corners, walk, sliders };
        }"""
    )
    assert triangle["sliders"] == 3
    for n, corner in enumerate(triangle["corners"]):
        assert list(corner.values()) == pytest.approx([1.0 if i == n else 0.0 for i in range(3)], abs=1e-9)
    for weights in triangle["walk"]:
        assert sum(weights) == pytest.approx(1) and min(weights) >= 0
    assert len({tuple(round(w, 3) for w in weights) for weights in triangle["walk"]}) > 10  # the point moved


def test_a_sweep_answers_as_the_api_does_at_each_point(page, checkpoint_server, http):
    open_playground(page, checkpoint_server.url)
    page.get_by_role("tab", name="Sweep").click()
    panel = page.locator("#panel-sweep")
    set_sampling(panel, max_tokens=12)
    panel.get_by_label("Points").fill("3")
    panel.get_by_role("button", name="Sweep", exact=True).click()
    cards = answer_cards(page, "sweep", 3)
    for n, weights in enumerate(
        ({"alpha": 1.0, "beta": 0.0}, {"alpha": 0.5, "beta": 0.5}, {"alpha": 0.0, "beta": 1.0})
    ):
        request = {"model": "test-mix", "mixture": {"weights": weights}}
        body = {**request, "messages": [{"role": "user", "content": "Tell me about the ocean."}]}
        answer = http.post("/v1/chat/completions", json=body | {"temperature": 0, "seed": 0, "max_tokens": 12})
        assert cards.nth(n).locator(".answer").inner_text() == answer.json()["choices"][0]["message"]["content"]
    drawn = page.evaluate(
        """() => Chart.getChart(document.querySelector("#panel-sweep canvas")).data.datasets
              .map((d) => [d.label, d.data.map((p) => p.x)])"""
    )
    assert drawn == [["alpha", [0, 0.5, 1]], ["beta", [0, 0.5, 1]]]
    assert page.locator("#panel-sweep table.data tbody tr").count() == 3
    assert not page.problems


def test_live_defaults_change_only_when_confirmed_and_a_running_job_can_be_cancelled(page, checkpoint_server, admin):
    open_playground(page, checkpoint_server.url, admin_token=ADMIN_TOKEN)
    page.get_by_role("tab", name="Weight sets").click()
    panel = page.locator("#panel-weightsets")
    before = admin.get("/admin/mixture").json()
    panel.get_by_label("New live defaults: weight of alpha").fill("0.25")
    panel.get_by_role("button", name="Set as live defaults").click()
    page.locator("#confirm-cancel").click()
    assert admin.get("/admin/mixture").json()["default_weights"] == before["default_weights"]
    panel.get_by_role("button", name="Set as live defaults").click()
    confirm(page)
    # A new active set (an earlier test may have left a 'manual' one active already).
    active = page.locator("#weight-sets tr[data-active=true]")
    expect(active).not_to_have_attribute("data-set", str(before["active_weight_set"]), timeout=TIMEOUT_MS)
    expect(active.locator("td").nth(1)).to_have_text("manual", timeout=TIMEOUT_MS)
    assert admin.get("/admin/mixture").json()["default_weights"] == pytest.approx({"alpha": 0.25, "beta": 0.75})
    page.get_by_role("tab", name="Jobs").click()
    jobs = page.locator("#panel-jobs")
    jobs.get_by_label("Job", exact=True).select_option("fit")
    jobs.locator("fieldset", has_text="Fit options").get_by_label("Iterations", exact=True).fill("1000000")
    jobs.get_by_role("button", name="Start").click()
    expect(page.locator("#job-view .phase")).to_have_attribute("data-phase", "fitting", timeout=TIMEOUT_MS)
    page.locator("#job-view").get_by_role("button", name="Cancel").click()
    confirm(page)
    expect(page.locator("#job-view .phase")).to_have_attribute("data-phase", "cancelled", timeout=TIMEOUT_MS)
    assert admin.get("/admin/mixture").json()["default_weights"] == pytest.approx({"alpha": 0.25, "beta": 0.75})
    assert not page.problems
