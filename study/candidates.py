"""What the study compares, and how each candidate is asked for through the OpenAI API.

The reference, each policy alone, the uniform mixture, one mixture per fit (a stored weight
set, `<mixture>@<id>`), the reward soups (uniform, and the weights of the fit with the best
Min) and the two retrained baselines. Soups and baselines are manifest baselines: models
served alone, never mixed.
"""

from dataclasses import dataclass

# The fits a user can choose between (server.jobs.fit_batch.FitOptions), by candidate name: the
# items each is given (the fit prompts with MPO's short reference samples; fewer fit prompts,
# answered by the served mixture as the study answers, for the judged fit; the demo's fit pairs)
# and its options beyond the study's.
FITS: dict[str, tuple[str, dict]] = {
    "fit_implicit": ("prompts", {}),  # the paper's method: the policies' implicit rewards
    "fit_standard": ("prompts", {"normalise": "standard"}),  # the paper's ablation: standardised per objective
    "fit_rewards": ("prompts", {"scorers": "manifest", "beta": 0.5}),  # the scorers' rewards of reference samples
    "fit_judged": ("judged", {"method": "judged"}),  # the worst objective's win rate, on the served mixture
    "fit_pairs": ("pairs", {"method": "pairs"}),  # the worst objective's log sigmoid margin on preference pairs
}
LABELS = {
    "ref": "reference",
    "uniform": "uniform mixture",
    "fit_implicit": "MPO, implicit rewards",
    "fit_standard": "MPO, implicit, standardised",
    "fit_rewards": "MPO, scorers' rewards, beta 0.5",
    "fit_judged": "judged fit (win rates, served mixture)",
    "fit_pairs": "pair fit (the demo's fit pairs)",
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
