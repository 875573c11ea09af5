"""Objective scorers: the reward of a (prompt, response) pair for one objective, by name.

Pure Python (no vLLM): the eval jobs, the fits from explicit rewards and the demo's build use
the same scorers. `get_scorer("sentiment")`, `get_scorer("reward_model:/path")`, ...; see
scorers.registry for the names.
"""

from scorers.base import Prompt, Scorer, ScorerError
from scorers.registry import SCORER_NAMES, get_scorer

__all__ = ["SCORER_NAMES", "Prompt", "Scorer", "ScorerError", "get_scorer"]
