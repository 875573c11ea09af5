"""The command line of `mpo-serve study` (apart from study.run, whose imports are heavy)."""

import argparse
from pathlib import Path

# Of the SmolLM2 demo's 408 eval prompts: at 512-token answers every candidate's answers to 144
# take about an hour on 2 cores, and the best fit's paired interval against the uniform mixture
# is then about +-3 points (docs/study.md).
EVAL_PROMPTS = 144


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("study-run"), help="where the study keeps everything")
    parser.add_argument(
        "--demo-folder", type=Path, help="a built SmolLM2 demo (default: the cached one, built if absent)"
    )
    parser.add_argument("--eval-prompts", type=int, help=f"held-out prompts (default {EVAL_PROMPTS})")
    parser.add_argument("--seed", type=int, help="sampling seed of every answer (default 0)")
    parser.add_argument("--smoke", action="store_true", help="every step on a few prompts (checks the path only)")
    parser.add_argument(
        "--llm-judge",
        action="store_true",
        default=None,
        help="also judge every answer against the reference's by a language model, both orders "
        "(an OpenAI-compatible endpoint: MPO_JUDGE_BASE_URL, MPO_JUDGE_MODEL, MPO_JUDGE_API_KEY)",
    )
