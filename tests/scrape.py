"""Reading a server's /metrics in tests: every sample of a scrape, and sums of some."""

import time

from prometheus_client.parser import text_string_to_metric_families


def scrape(http) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    return samples(http.get("/metrics"))


def scrape_until(http, reached, timeout: float = 10.0) -> dict[tuple[str, tuple], float]:
    """Scrape until `reached(samples)` holds; the last scrape, which fails the test if it never does."""
    deadline = time.monotonic() + timeout
    while not reached(samples := scrape(http)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert reached(samples), "the metrics never reached what the test waited for"
    return samples


async def scrape_async(http) -> dict[tuple[str, tuple], float]:
    return samples(await http.get("/metrics"))


def samples(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: dict, name: str, **labels) -> float:
    wanted = set(labels.items())
    return sum(v for (n, sample_labels), v in samples.items() if n == name and wanted <= set(sample_labels))
