"""Admission control: its bookkeeping (pure), then a real server held to two decoding and two
waiting requests: what comes beyond is refused at once with 503 (429 for one API key over its
bound) and Retry-After, what was admitted finishes, and the openai client's retries succeed once
the load has passed."""

import asyncio
import gc
import threading
import time

import httpx
import openai
import pytest

from server.exceptions import Overloaded, RateLimited, ShuttingDown
from server.serving.admission import Admission
from tests.scrape import scrape, total
from tests.server_process import ServerProcess

KEYS = ("key-a", "key-b", "key-c")


def test_admission_holds_running_plus_waiting_and_frees_each_place_once():
    admission = Admission(running=2, max_waiting=1, per_key=None, retry_after_s=2.0)
    tickets = [admission.admit(None) for _ in range(3)]
    assert admission.in_flight == 3 and admission.waiting == 1
    with pytest.raises(Overloaded, match="1 requests wait") as refused:
        admission.admit(None)
    assert refused.value.retry_after_s == 2.0 and refused.value.code == "server_is_overloaded"
    tickets[0].release()
    tickets[0].release()  # once only
    assert admission.in_flight == 2
    with admission.admit(None):
        assert admission.in_flight == 3
    assert admission.in_flight == 2


def test_one_key_is_held_to_its_bound_and_others_are_not():
    admission = Admission(running=8, max_waiting=8, per_key=2, retry_after_s=1.0)
    held = [admission.admit("a"), admission.admit("a")]
    with pytest.raises(RateLimited, match="this API key has 2 requests in flight"):
        admission.admit("a")
    admission.admit("b")
    held[0].release()
    admission.admit("a")


def test_a_closed_admission_refuses_everything_and_drained_waits_for_the_last():
    async def scenario() -> None:
        admission = Admission(running=2, max_waiting=2, per_key=None, retry_after_s=1.0)
        ticket = admission.admit(None)
        admission.close("draining")
        with pytest.raises(ShuttingDown, match="stopping \\(draining\\)"):
            admission.admit(None)
        assert not await admission.drained(0.05)
        asyncio.get_running_loop().call_later(0.05, ticket.release)
        assert await admission.drained(5)

    asyncio.run(scenario())


def test_a_held_stream_frees_its_place_at_its_end_or_when_never_started():
    async def chunks():
        yield 1
        yield 2

    async def scenario() -> None:
        admission = Admission(running=1, max_waiting=0, per_key=None, retry_after_s=1.0)
        with admission.admit(None) as ticket:
            stream = ticket.hold(chunks())
        assert admission.in_flight == 1  # the stream holds it now
        assert [c async for c in stream] == [1, 2]
        assert admission.in_flight == 0
        with admission.admit(None) as ticket:
            never_started = ticket.hold(chunks())
        del never_started  # a client that left before the response began
        gc.collect()
        assert admission.in_flight == 0
        with pytest.raises(ValueError), admission.admit(None) as ticket:
            ticket.hold(chunks())
            raise ValueError("the request was refused after admission")
        assert admission.in_flight == 0

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def small_server(test_manifest, tmp_path_factory):
    folder = tmp_path_factory.mktemp("admission")
    env = {
        "MPO_MAX_NUM_SEQS": "2",
        "MPO_MAX_WAITING": "2",
        "MPO_API_KEYS": ",".join(KEYS),
        "MPO_MAX_IN_FLIGHT_PER_KEY": "2",
    }
    with ServerProcess(test_manifest, folder, folder / "server.log", env=env) as server:
        yield server


def long_stream(url: str, key: str, results: list) -> None:
    """A stream of 500 tokens; appends its status and whether it ended with [DONE]."""
    body = {"model": "test-mix", "prompt": "Life is", "max_tokens": 500, "ignore_eos": True, "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, headers=headers, timeout=120) as response:
        lines = [line for line in response.iter_lines() if line]
    results.append((response.status_code, lines[-1] == "data: [DONE]" and "error" not in "".join(lines)))


def fill(server, keys: list[str]) -> tuple[list[threading.Thread], list]:
    """One long stream per key, and a wait until the server counts all of them in flight."""
    results: list = []
    threads = [threading.Thread(target=long_stream, args=(server.url, key, results)) for key in keys]
    for thread in threads:
        thread.start()
    metrics = httpx.Client(base_url=server.url, timeout=30)
    deadline = time.monotonic() + 30
    while total(scrape(metrics), "mpo_requests_in_flight", state="admitted") < len(keys):
        assert time.monotonic() < deadline, "the streams were not admitted"
        time.sleep(0.02)
    return threads, results


def refusal(server, key: str) -> tuple[httpx.Response, float]:
    body = {"model": "test-mix", "prompt": "Hello", "max_tokens": 4}
    began = time.perf_counter()
    response = httpx.post(f"{server.url}/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    return response, time.perf_counter() - began


def test_beyond_the_queue_requests_get_a_fast_503_and_what_was_admitted_finishes(small_server):
    threads, results = fill(small_server, ["key-a", "key-a", "key-b", "key-b"])  # 2 decoding, 2 waiting
    refusals = [refusal(small_server, "key-c") for _ in range(5)]
    for thread in threads:
        thread.join()
    seconds = [elapsed for _, elapsed in refusals]
    print(f"refusals answered in {', '.join(f'{1000 * s:.1f}' for s in seconds)} ms")
    for response, _ in refusals:
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        error = response.json()["error"]
        assert error["code"] == "server_is_overloaded" and error["type"] == "service_unavailable_error"
        assert "2 requests wait" in error["message"]
    assert max(seconds) < 0.05
    assert results == [(200, True)] * 4


def test_one_key_over_its_bound_gets_429_while_another_key_is_served(small_server):
    threads, results = fill(small_server, ["key-a", "key-a"])
    response, _ = refusal(small_server, "key-a")
    other, _ = refusal(small_server, "key-b")
    for thread in threads:
        thread.join()
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert other.status_code == 200, other.text
    assert results == [(200, True)] * 2


def test_the_openai_clients_retries_succeed_once_the_load_has_passed(small_server):
    http = httpx.Client(base_url=small_server.url, timeout=30)
    before = total(scrape(http), "mpo_requests_rejected_total", reason="overloaded")
    threads, results = fill(small_server, ["key-a", "key-a", "key-b", "key-b"])
    client = openai.OpenAI(base_url=f"{small_server.url}/v1", api_key="key-c", max_retries=8)
    reply = client.completions.create(model="test-mix", prompt="Hello", max_tokens=4)
    for thread in threads:
        thread.join()
    assert reply.choices[0].text is not None and reply.usage.completion_tokens == 4
    assert total(scrape(http), "mpo_requests_rejected_total", reason="overloaded") > before  # it was refused first
    assert results == [(200, True)] * 4
