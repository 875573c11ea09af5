"""Request bodies and checks the server tests share: a greedy completion with token ids and
logprobs, the ids back from its answer, and recorded scores against the oracle."""

NEW_TOKENS = 10


def completion_body(prompt: list[int], **extra) -> dict:
    return {
        "model": "test-mix",
        "prompt": prompt,
        "max_tokens": NEW_TOKENS,
        "temperature": 0,
        "logprobs": 1,
        "ignore_eos": True,
        "return_tokens_as_token_ids": True,
        **extra,
    }


def token_ids(logprobs: dict) -> list[int]:
    return [int(t.removeprefix("token_id:")) for t in logprobs["tokens"]]


def assert_scores_match(oracle, prompt, item, tol=1e-3):
    """A recorded sample's per-component log-probs and implicit rewards equal the oracle's."""
    expected = oracle.sequence_logprobs(prompt, item["token_ids"])
    got = [item["logprobs"][name] for name in oracle.names]
    assert all(abs(a - b) < tol for a, b in zip(got, expected, strict=True)), (got, expected)
    rewards = item["implicit_rewards"]  # the policies' (a baseline has none)
    assert rewards and all(
        abs(r - (expected[oracle.names.index(name)] - expected[0])) < tol for name, r in rewards.items()
    )
