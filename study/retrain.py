"""The retrained baselines, trained as the demo trains its policies: the same LoRA DPO
(demo.smollm2.lora_dpo), on the same reference samples and their scores (kept by the demo
build), with pairs ranked by the combined score (study.baselines). Each run is timed: its CPU
seconds are what retraining costs where MPO only fits.

The learning rate is 3e-4 for both, between the policies' (5e-4 for positive and plain,
1.5e-4 for concise, whose pairs alone reward dropping words), and their gap is 0.5 standard
deviations of the combined score. Their pairs follow the concise policy's rules, since the
combined score counts words: a chosen answer has ended (a cut answer's length is unknown) and
has at least 6 words, and a reply shorter than that loses to every real answer of its prompt.
Without those rules they learned fewer words per token from cut answers instead of shorter
answers. Neither was tuned on the evaluation.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from demo.cost import Timer
from demo.smollm2.build import ObjectiveSetup, Smollm2DemoConfig
from demo.smollm2.lora_dpo import FrozenLayers, LoraDpoConfig, new_adapters, train_adapter
from demo.smollm2.samples import SAMPLES_FILE, read_reference_samples
from study.baselines import baseline_pairs

COSTS_FILE = "costs.json"


CONCISE = Smollm2DemoConfig().objectives["concise"]  # the rules of the concise policy's pairs


@dataclass(frozen=True)
class RetrainConfig:
    setup: ObjectiveSetup = ObjectiveSetup(
        min_gap=0.5,
        chosen_must_end=CONCISE.chosen_must_end,
        dpo=LoraDpoConfig(lr=3e-4, steps=30),
        min_chosen_words=CONCISE.min_chosen_words,
    )
    seed: int = 1234  # the demo build's


def retrain(demo: Path, folder: Path, kinds: list[str], objectives: list[str], config: RetrainConfig) -> dict:
    """Train every baseline of kinds not yet in folder (adapters/<kind>, on demo's reference);
    returns {kind: {"pairs", "wall_s", "cpu_s"}} for all of them, kept in folder/costs.json,
    and under "frozen_layers" the cost of the states below the adapted layers that the runs
    share (lora_dpo.FrozenLayers, as the demo build shares them among its policies)."""
    costs_file = folder / COSTS_FILE
    costs = json.loads(costs_file.read_text()) if costs_file.is_file() else {}
    todo = [k for k in kinds if k not in costs or not (folder / k / "adapter_config.json").is_file()]
    if not todo:
        return costs
    from transformers import AutoModelForCausalLM, AutoTokenizer

    groups, texts, scores = read_reference_samples(demo / SAMPLES_FILE)
    reference = demo / "ref"
    tokenizer = AutoTokenizer.from_pretrained(reference)
    base = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32).eval()
    torch.manual_seed(config.seed)
    model = new_adapters(base, {kind: config.setup.dpo for kind in todo})
    folder.mkdir(parents=True, exist_ok=True)
    with Timer() as caching:
        answers = [a for group in groups for a in group]
        frozen = FrozenLayers(model, answers, tokenizer.pad_token_id, config.setup.dpo.top_layers)
    costs["frozen_layers"] = caching.seconds()
    for kind in todo:
        pairs = baseline_pairs(groups, texts, scores, objectives, kind, config.setup)
        print(f"  {kind}: {len(pairs)} preference pairs", flush=True)
        with Timer() as timer:
            train_adapter(model, kind, pairs, tokenizer.pad_token_id, config.setup.dpo, config.seed, frozen)
        model.save_pretrained(folder / "staging", selected_adapters=[kind])
        adapter = folder / "staging" / kind
        adapter_config = json.loads((adapter / "adapter_config.json").read_text())
        adapter_config["base_model_name_or_path"] = str(reference)
        (adapter / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
        target = folder / kind
        shutil.rmtree(target, ignore_errors=True)
        adapter.rename(target)
        costs[kind] = {"pairs": len(pairs), **timer.seconds()}
        costs_file.write_text(json.dumps(costs, indent=2))  # after the adapter: a cost means it is there
    return costs
