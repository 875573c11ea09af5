"""A client that goes away frees its engine slot: its request is aborted, not decoded on."""

import re
import time

import httpx

# Long enough (seconds of decoding) that the client can leave long before the end.
BODY = {"model": "test-mix", "prompt": "Life is", "max_tokens": 480, "ignore_eos": True, "n": 8}


def unfinished(http) -> int:
    return int(float(re.search(r"^mpo_requests_unfinished (\S+)$", http.get("/metrics").text, re.M).group(1)))


def wait_until_idle(http, seconds: float) -> float:
    start = time.time()
    while unfinished(http) and time.time() - start < seconds:
        time.sleep(0.02)
    return time.time() - start


def full_duration(server) -> float:
    start = time.time()
    httpx.post(f"{server.url}/v1/completions", json=BODY, timeout=120).raise_for_status()
    return time.time() - start


def test_streaming_client_disconnect_aborts_its_request(server, http):
    full = full_duration(server)
    for _attempt in range(3):  # a client starved of CPU may read its first chunk only after the end
        with httpx.stream(
            "POST", f"{server.url}/v1/completions", json={**BODY, "stream": True}, timeout=60
        ) as response:
            # Keep the iterator: a discarded one is closed at once, and closing it closes the
            # stream, so the request would be aborted before it is counted.
            lines = response.iter_lines()
            first = next(lines)
            running = unfinished(http)
        if running:
            break
        wait_until_idle(http, full)
    assert running >= 1, f"the request always finished before the client could leave; first event: {first[:300]}"
    idle_after = wait_until_idle(http, full)
    assert unfinished(http) == 0 and idle_after < full / 2, (idle_after, full)


def test_non_streaming_client_disconnect_aborts_its_request(server, http):
    full = full_duration(server)
    try:
        httpx.post(f"{server.url}/v1/completions", json=BODY, timeout=full / 10)
    except httpx.TimeoutException:
        pass
    idle_after = wait_until_idle(http, full)
    assert unfinished(http) == 0 and idle_after < full / 2, (idle_after, full)
