"""What the study compares, and how each candidate is asked for through the OpenAI API.

The reference, each policy alone, the uniform mixture, one mixture per fit (a stored weight
set, `<mixture>@<id>`), the reward soups (uniform, and the weights of the fit with the best
Min) and the two retrained baselines. Soups and baselines are manifest baselines: models
served alone, never mixed.
"""

from dataclasses import dataclass

# The fits a user can choose between (server.jobs.fit_batch.FitOptions), by candidate name.
FITS: dict[str, dict] = {
    "fit_implicit": {},  # the paper's method: the policies' implicit rewards
    "fit_standard": {"normalise": "standard"},  # the paper's ablation: implicit, standardised per objective
    "fit_rewards": {"scorers": "manifest", "beta": 0.5},  # the scorers' rewards of reference samples
}
LABELS = {
    "ref": "reference",
    "uniform": "uniform mixture",
    "fit_implicit": "MPO, implicit rewards",
    "fit_standard": "MPO, implicit, standardised",
    "fit_rewards": "MPO, scorers' rewards, beta 0.5",
    "soup_uniform": "soup, uniform",
    "soup_best": "soup, best fit's weights",
    "linear": "retrained, linear (MORLHF)",
    "maxmin": "retrained, max-min (MaxMin-RLHF)",
}


@dataclass(frozen=True)
class Candidate:
    name: str
    kind: str  # reference | policy | mixture | fit | soup | retrained
    model: str  # the model id in requests
    weights: dict[str, float] | None = None  # per-request weights (the uniform mixture)

    def request(self) -> dict:
        """The request fields that select this candidate."""
        return {"model": self.model} | ({"mixture": {"weights": self.weights}} if self.weights else {})


def uniform(policies: list[str]) -> dict[str, float]:
    return {p: 1.0 / len(policies) for p in policies}
