"""The study's two sets of judges, by objective: the ones the policies and the retrained
baselines were trained on (the demo manifest's objectives), and held-out ones that measure the
same three things another way and that nothing was trained on. A lead that holds under both is
the candidate's; one that holds only under the training judges may be what training learned
about its judge (fewer words per token, VADER's words).

- positive: VADER's compound -> TextBlob's polarity (another lexicon, other rules);
- concise: minus words -> minus characters (a length judge too: cut answers tie);
- plain: Flesch reading ease (syllables) -> Dale-Chall (familiar words; lower is easier).

With `--llm-judge` a third set asks a language model (scorers.llm_judge, `llm:<objective>`: the
endpoint from MPO_JUDGE_*) which of the candidate's and the reference's answers is better, in
both orders, as the paper's GPT-4 win rates do.
"""

from collections.abc import Mapping

HELD_OUT = {"sentiment": "textblob", "concise": "characters", "readability": "dale_chall"}
TITLES = {"training": "training judges", "held_out": "held-out judges", "llm": "LLM judge"}


def judge_sets(objectives: Mapping[str, str], llm: bool = False) -> dict[str, dict[str, str]]:
    """{"training": objectives (objective -> scorer spec), "held_out": the same objectives'
    held-out scorers, with `llm` "llm": an LLM judge per objective}; a training scorer with no
    held-out counterpart keeps its own."""
    sets = {"training": dict(objectives), "held_out": {o: HELD_OUT.get(s, s) for o, s in objectives.items()}}
    return sets | ({"llm": {o: f"llm:{o}" for o in objectives}} if llm else {})


def describe(specs: Mapping[str, str]) -> dict[str, dict]:
    """Each objective's scorer, direction, units and whether it judges length (for study.json:
    the table then needs no scorer)."""
    from scorers import get_scorer

    return {o: get_scorer(spec).describe() for o, spec in specs.items()}
