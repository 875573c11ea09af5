"""Admission control: its bookkeeping (pure), then a real server held to one decoding and one
waiting request: what comes beyond is refused at once with 503 (429 for one API key over its
bound) and Retry-After, what was admitted finishes, and the openai client's retries succeed once
the load has passed. (A held stream's place: tests/server/test_shutdown.py, streams drained.)"""

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import openai
import pytest

from server.exceptions import Overloaded, RateLimited, ShuttingDown
from server.serving.admission import Admission
from tests.scrape import scrape, scrape_async, total
from tests.server_process import ServerProcess

KEYS = ("key-a", "key-b", "key-c")
T = TypeVar("T")


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
    full = Admission(running=1, max_waiting=0, per_key=1, retry_after_s=1.0)
    full.admit("a")
    with pytest.raises(RateLimited):  # its own bound first, though the server is full too
        full.admit("a")
    with pytest.raises(Overloaded):
        full.admit("b")


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
        "MPO_MAX_NUM_SEQS": "1",
        "MPO_MAX_WAITING": "1",
        "MPO_API_KEYS": ",".join(KEYS),
        "MPO_MAX_IN_FLIGHT_PER_KEY": "1",
    }
    with ServerProcess(test_manifest, folder, folder / "server.log", env=env) as server:
        yield server


# On this VM, while vLLM's engine decodes, a process asleep on a timer may wake tens of seconds
# late (seen: time.sleep(1) returning after 27 s, a bash loop ticking every 50 ms missing 23 s),
# where one waiting on a socket wakes when its data comes; threads hand Python's GIL over on a
# timer too. So the clients here are one asyncio program, which waits on sockets only.


async def long_request(client: httpx.AsyncClient) -> tuple[int, bool]:
    """16 answers of 300 tokens in one request, which keep the engine's one slot busy for about
    10 s; its status and whether every answer is whole."""
    body = {"model": "test-mix", "prompt": "Life is", "max_tokens": 300, "n": 16, "ignore_eos": True}
    response = await client.post("/v1/completions", json=body)
    whole = response.status_code == 200 and [c["finish_reason"] for c in response.json()["choices"]] == ["length"] * 16
    return response.status_code, whole


async def admitted(metrics: httpx.AsyncClient) -> float:
    return total(await scrape_async(metrics), "mpo_requests_in_flight", state="admitted")


def under_load(
    server, keys: list[str], action: Callable[[], Awaitable[T]], held: Callable[[httpx.AsyncClient], Awaitable[bool]]
) -> T:
    """action() while the server holds one long request per key (each sent once the server
    counts the one before); what it returned, once every long request has finished whole.

    Should a stall still come between the load and the action, the action reaches the server
    after the load has passed: `held(metrics)`, asked after the action, says from the server's
    own counters whether the load was still there; a round where it was not measured nothing and
    is run again, three rounds at most (a server that really fails fails all three)."""

    async def rounds() -> T:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as metrics:
            for _ in range(3):
                clients = [await keyed(server, key) for key in keys]
                loads: list[asyncio.Task] = []
                for client in clients:
                    loads.append(asyncio.create_task(long_request(client)))
                    while await admitted(metrics) < len(loads) and not any(load.done() for load in loads):
                        pass  # each scrape waits on its socket, giving the request its turn
                outcome = await action()
                counted = await held(metrics)
                assert await asyncio.gather(*loads) == [(200, True)] * len(keys), "what was admitted was not whole"
                if counted:
                    return outcome
        raise AssertionError(f"the server was never seen holding {len(keys)} requests through the action")

    return asyncio.run(rounds())


def still_full(count: int) -> Callable[[httpx.AsyncClient], Awaitable[bool]]:
    """The load was held through the action: the server still counts every long request in
    flight after it (one that finished lowers the count; the action's own are done)."""

    async def full(metrics: httpx.AsyncClient) -> bool:
        return await admitted(metrics) == count

    return full


async def short(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/v1/completions", json={"model": "test-mix", "prompt": "Hello", "max_tokens": 4})


async def keyed(server, key: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    (await client.get("/v1/models")).raise_for_status()  # the connection is open before anything is sent
    return client


def refusal_seconds(metrics: httpx.Client, status: int) -> tuple[float, float]:
    """How many /v1/completions answers of `status` this server has timed, and how many of them
    within 50 ms: measured in the server, from the request's arrival to its last byte (the
    clients here share the VM's stalls)."""
    samples = scrape(metrics)
    labels = {"handler": "/v1/completions", "status": str(status)}
    return (
        total(samples, "http_request_duration_seconds_count", **labels),
        total(samples, "http_request_duration_seconds_bucket", le="0.05", **labels),
    )


def test_beyond_the_queue_a_fast_503_or_429_what_was_admitted_finishes_and_openai_retries_succeed(small_server):
    """One round of load (key-a decoding, key-b waiting): five requests of key-c get 503, one of
    key-a (at its bound) 429, each with Retry-After and answered in the server within 50 ms; the
    openai client, refused first, gets its answer by retrying once the load has passed."""
    metrics = httpx.Client(base_url=small_server.url, timeout=60)
    before = {status: refusal_seconds(metrics, status) for status in (503, 429)}
    openai_client = openai.AsyncOpenAI(base_url=f"{small_server.url}/v1", api_key="key-c", max_retries=60)
    retried: list[asyncio.Task] = []

    async def refused_requests() -> list[httpx.Response]:
        c, a = await keyed(small_server, "key-c"), await keyed(small_server, "key-a")
        responses = [await short(c) for _ in range(5)] + [await short(a)]
        async with httpx.AsyncClient(base_url=small_server.url) as http:
            rejected = total(await scrape_async(http), "mpo_requests_rejected_total", reason="overloaded")
            retried.append(
                asyncio.create_task(openai_client.completions.create(model="test-mix", prompt="Hi", max_tokens=4))
            )
            while (
                total(await scrape_async(http), "mpo_requests_rejected_total", reason="overloaded") == rejected
                and not retried[-1].done()  # (admitted: the load had passed, a round for nothing)
            ):
                pass  # until the openai client's first try has been refused (see above: no sleeping)
        return responses

    async def then_retried(metrics: httpx.AsyncClient) -> bool:
        full = await still_full(2)(metrics)
        retried.append(await retried.pop())  # the openai client's retries, once the load has passed
        return full

    responses = under_load(small_server, ["key-a", "key-b"], refused_requests, then_retried)
    for response in responses[:5]:
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        error = response.json()["error"]
        assert error["code"] == "server_is_overloaded" and error["type"] == "service_unavailable_error"
        assert "1 requests wait" in error["message"]
    assert responses[5].status_code == 429 and responses[5].headers["Retry-After"] == "1"
    assert responses[5].json()["error"]["code"] == "rate_limit_exceeded"
    for status, (count_before, fast_before) in before.items():
        count, fast = refusal_seconds(metrics, status)
        assert count > count_before, status
        assert fast - fast_before == count - count_before, f"a {status} took 50 ms or more in the server"
    reply = retried[-1]
    assert reply.choices[0].text is not None and reply.usage.completion_tokens == 4


def test_another_key_is_not_held_to_one_keys_bound(small_server):
    """key-b, sent while key-a is at its bound, is admitted (and waits for the engine's slot)."""

    async def key_b() -> httpx.Response:
        return await short(await keyed(small_server, "key-b"))

    served = under_load(small_server, ["key-a"], key_b, lambda _: asyncio.sleep(0, True))
    assert served.status_code == 200, served.text
