"""The demo's reference policy: a byte-level BPE tokenizer and a tiny Llama, both trained
from scratch on the shipped fortunes corpus (BSD licence, see corpus/LICENSE.fortunes).

The model is small enough to pretrain on two CPU cores in a few minutes, with attention
heads of size 64 because vLLM's CPU attention kernels need a supported head size.
"""

import math
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = Path(__file__).parent.parent / "corpus" / "fortunes.txt"
BOS, EOS, PAD = "<|bos|>", "<|endoftext|>", "<|pad|>"
# The demo model is a text continuer: a chat turns into the messages' text, one per line,
# and the assistant's answer continues the last one.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['content'] }}"
    "{% if not loop.last %}\n{% endif %}{% endfor %}"
)


def read_corpus() -> list[str]:
    return [line for line in CORPUS.read_text().splitlines() if line.strip()]


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style) with a BOS added to every encoded text."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, BOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tiny_llama_config(tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int, max_len: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        head_dim=64,
        max_position_embeddings=max_len,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )


def pack(tokenizer: PreTrainedTokenizerFast, texts: list[str], block: int) -> torch.Tensor:
    """Every text as BOS text EOS, concatenated and cut into (N, block) training rows."""
    ids: list[int] = []
    for encoded in tokenizer(texts)["input_ids"]:
        ids.extend(encoded + [tokenizer.eos_token_id])
    rows = len(ids) // block
    return torch.tensor(ids[: rows * block]).view(rows, block)


def pretrain(
    model: LlamaForCausalLM, data: torch.Tensor, steps: int, batch: int, lr: float, log_every: int = 50
) -> float:
    """AdamW with linear warm-up and cosine decay; returns the final training loss."""
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    model.train()
    start, loss_value = time.time(), float("nan")
    for step in range(steps):
        rows = data[torch.randint(len(data), (batch,), generator=generator)]
        loss = model(input_ids=rows, labels=rows).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        loss_value = loss.item()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"  pretrain step {step + 1}/{steps} loss {loss_value:.3f} ({time.time() - start:.0f}s)", flush=True)
    model.eval()
    return loss_value
