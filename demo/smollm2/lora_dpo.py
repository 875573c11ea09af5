"""DPO with LoRA adapters (peft) on one base model, one adapter per objective.

The base stays frozen and shared: the reference's log-probs come from the sampling pass, so
training needs no second copy of the model. LoRA sits on the upper layers only: autograd then
stops below them, and tone and length are decided high in the network anyway. Since nothing
below the adapted layers ever changes, their output for each answer is computed once
(FrozenLayers) and every step of every adapter trained on those answers starts from it: a
step then runs only the adapted layers and the head (for 8 pairs of the demo on 2 cores:
5.1 s instead of 7.7 s on the earlier machines, 7.5 s instead of 11.3 s on an AVX2 EPYC).
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers.masking_utils import create_causal_mask

from demo.dpo import dpo_loss
from demo.smollm2.sampling import Answer

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class LoraDpoConfig:
    rank: int = 16
    alpha: int = 32
    top_layers: int = 10  # LoRA on the last N decoder layers
    beta: float = 0.1
    lr: float = 5e-4
    steps: int = 30
    pairs_per_step: int = 8


def lora_config(base_config, config: LoraDpoConfig) -> LoraConfig:
    layers = base_config.num_hidden_layers
    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=TARGET_MODULES,
        layers_to_transform=list(range(max(0, layers - config.top_layers), layers)),
        task_type="CAUSAL_LM",
    )


def _mask(lengths: list[int]) -> torch.Tensor:
    """(N, L) attention mask of right-padded rows of these lengths: positions stay 0..len-1."""
    width = max(lengths)
    return torch.tensor([[1] * n + [0] * (width - n) for n in lengths])


def _padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and their attention mask, both (N, L)."""
    width = max(map(len, rows))
    return torch.tensor([r + [pad] * (width - len(r)) for r in rows]), _mask([len(r) for r in rows])


def _run_layers(decoder, hidden: torch.Tensor, attention: torch.Tensor, layers) -> torch.Tensor:
    """hidden (N, L, H) through some of a Llama decoder's layers, as its own forward runs them."""
    position_ids = torch.arange(hidden.shape[1])[None]
    mask = create_causal_mask(
        config=decoder.config,
        inputs_embeds=hidden,
        attention_mask=attention,
        past_key_values=None,
        position_ids=position_ids,
    )
    rotary = decoder.rotary_emb(hidden, position_ids=position_ids)
    for layer in layers:
        hidden = layer(hidden, attention_mask=mask, position_embeddings=rotary, position_ids=position_ids)
    return hidden


class FrozenLayers:
    """Each answer's hidden states below the adapted layers, computed once.

    Computed in batches of similar length (less padding); a row's states do not depend on its
    batch (causal attention, right padding), so a step that starts from them gives the
    log-probs of a full forward pass, to float rounding."""

    def __init__(self, model: PeftModel, answers: list[Answer], pad: int, top_layers: int, batch: int = 32) -> None:
        decoder = model.get_base_model().model
        self.first_adapted = decoder.config.num_hidden_layers - top_layers
        self.states: dict[tuple, torch.Tensor] = {}
        unique = {_key(a): a for a in answers}
        ordered = sorted(unique.values(), key=lambda a: len(a.prompt_ids) + len(a.tokens))
        with torch.no_grad():
            for start in range(0, len(ordered), batch):
                chunk = ordered[start : start + batch]
                rows = [a.prompt_ids + a.tokens for a in chunk]
                input_ids, attention = _padded(rows, pad)
                hidden = decoder.embed_tokens(input_ids)
                hidden = _run_layers(decoder, hidden, attention, decoder.layers[: self.first_adapted])
                for answer, row, states in zip(chunk, rows, hidden, strict=True):
                    self.states[_key(answer)] = states[: len(row)].clone()

    def batch(self, answers: list[Answer]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L, H) states of these answers, right-padded with zeros, and their mask (N, L)."""
        states = [self.states[_key(a)] for a in answers]
        attention = _mask([len(s) for s in states])
        hidden = torch.zeros(*attention.shape, states[0].shape[-1])
        for n, s in enumerate(states):
            hidden[n, : len(s)] = s
        return hidden, attention


def _key(answer: Answer) -> tuple:
    return tuple(answer.prompt_ids), tuple(answer.tokens)


def answer_logprobs(
    model: PeftModel, answers: list[Answer], pad: int, frozen: FrozenLayers | None = None
) -> torch.Tensor:
    """(N,) sum of log p(answer token | prefix) under the active adapter.

    With frozen, only the layers above frozen.first_adapted run. The lm_head runs only where an
    answer token is predicted (not over the prompt): the vocabulary projection is a fifth of
    the model's work per position."""
    row_index, positions, targets = [], [], []
    for n, answer in enumerate(answers):
        first = len(answer.prompt_ids) - 1  # this position predicts the first answer token
        row_index += [n] * len(answer.tokens)
        positions += range(first, first + len(answer.tokens))
        targets += answer.tokens
    causal_lm = model.get_base_model()
    decoder = causal_lm.model
    if frozen is None:
        input_ids, attention = _padded([a.prompt_ids + a.tokens for a in answers], pad)
        hidden = decoder(input_ids=input_ids, attention_mask=attention).last_hidden_state  # (N, L, H)
    else:
        hidden, attention = frozen.batch(answers)
        hidden = decoder.norm(_run_layers(decoder, hidden, attention, decoder.layers[frozen.first_adapted :]))
    picked = hidden[torch.tensor(row_index), torch.tensor(positions)]  # (P, H)
    logprobs = torch.log_softmax(causal_lm.lm_head(picked).float(), dim=-1)  # (P, V)
    token_logprobs = logprobs.gather(-1, torch.tensor(targets)[:, None]).squeeze(-1)  # (P,)
    return torch.zeros(len(answers)).index_add(0, torch.tensor(row_index), token_logprobs)


def train_adapter(
    model: PeftModel,
    name: str,
    pairs: list[tuple[Answer, Answer]],
    pad: int,
    config: LoraDpoConfig,
    seed: int,
    frozen: FrozenLayers | None = None,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Train adapter `name` (already added to model) by DPO on (chosen, rejected) pairs,
    starting each step from frozen's states where given (built with config.top_layers).

    Pairs are visited in a seeded order, epoch after epoch, for config.steps steps; returns
    the loss of every step."""
    model.set_adapter(name)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 4))
    rng = random.Random(seed)
    order: list[tuple[Answer, Answer]] = []
    losses: list[float] = []
    start = time.time()
    for step in range(config.steps):
        if len(order) < config.pairs_per_step:
            epoch = pairs[:]
            rng.shuffle(epoch)
            order += epoch
        chunk, order = order[: config.pairs_per_step], order[config.pairs_per_step :]
        chosen, rejected = [c for c, _ in chunk], [r for _, r in chunk]
        policy = answer_logprobs(model, chosen + rejected, pad, frozen)
        reference = torch.tensor([a.logprob for a in chosen + rejected])
        k = len(chunk)
        loss = dpo_loss(policy[:k], policy[k:], reference[:k], reference[k:], config.beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 5 == 0 or step + 1 == config.steps:
            log(f"  dpo[{name}] step {step + 1}/{config.steps} loss {loss.item():.3f} ({time.time() - start:.0f}s)")
    model.eval()
    return losses


def new_adapters(base, configs: dict[str, LoraDpoConfig]) -> PeftModel:
    """The base model with one fresh LoRA adapter per name, each shaped by its own config."""
    (first, first_config), *others = configs.items()
    model = get_peft_model(base, lora_config(base.config, first_config), adapter_name=first)
    for name, config in others:
        model.add_adapter(name, lora_config(base.config, config))
    return model
