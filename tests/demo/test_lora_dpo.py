"""LoRA DPO's cache of the layers below the adapters (exact, not an approximation) and the
build's cost timer (which must count a vLLM engine's processes)."""

import copy
import subprocess
import sys
import time

import psutil
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from demo.cost import Timer
from demo.smollm2.lora_dpo import FrozenLayers, LoraDpoConfig, answer_logprobs, new_adapters, train_adapter
from demo.smollm2.sampling import Answer

PAD = 0


def _model_and_answers():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, pad_token_id=PAD,
    )  # fmt: skip
    base = LlamaForCausalLM(config).eval()
    generator = torch.Generator().manual_seed(1)
    answers = []
    for n in range(12):  # prompts and answers of different lengths: padding in every batch
        prompt = torch.randint(1, 97, (3 + n % 4,), generator=generator).tolist()
        tokens = torch.randint(1, 97, (2 + (5 * n) % 7,), generator=generator).tolist()
        answers.append(Answer(prompt, tokens, ended=n % 2 == 0, logprob=-float(len(tokens))))
    return base, answers


def test_logprobs_from_the_cached_lower_layers_equal_the_full_forward_pass():
    base, answers = _model_and_answers()
    config = LoraDpoConfig(rank=4, alpha=8, top_layers=2)
    model = new_adapters(base, {"x": config})
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.1)  # a trained adapter, not the zero start
    model.set_adapter("x")
    frozen = FrozenLayers(model, answers, PAD, config.top_layers, batch=5)
    with torch.no_grad():
        full = answer_logprobs(model, answers[2:9], PAD)
        cached = answer_logprobs(model, answers[2:9], PAD, frozen)
    assert frozen.first_adapted == 2
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)


def test_dpo_from_the_cache_trains_as_dpo_on_the_whole_model():
    base, answers = _model_and_answers()
    config = LoraDpoConfig(rank=4, alpha=8, top_layers=2, steps=4, pairs_per_step=3, lr=1e-2)
    pairs = list(zip(answers[0::2], answers[1::2], strict=True))
    models = [new_adapters(copy.deepcopy(base), {"x": config}) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    plain = train_adapter(models[0], "x", pairs, PAD, config, seed=3, log=lambda _: None)
    frozen = FrozenLayers(models[1], answers, PAD, config.top_layers)
    cached = train_adapter(models[1], "x", pairs, PAD, config, seed=3, frozen=frozen, log=lambda _: None)
    assert plain[0] > plain[-1]  # it learns
    torch.testing.assert_close(torch.tensor(cached), torch.tensor(plain), rtol=0, atol=1e-5)


def test_the_timer_counts_running_child_processes_only_when_asked():
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ninput()"
    for children in (True, False):
        with Timer(children=children) as timer:
            child = subprocess.Popen([sys.executable, "-c", busy], stdin=subprocess.PIPE)
            # until the child has burnt its CPU and waits (still running at the block's end)
            while sum(psutil.Process(child.pid).cpu_times()[:2]) < 0.6:
                time.sleep(0.05)
        child.communicate(b"\n")
        assert (timer.cpu >= 0.6) == children
