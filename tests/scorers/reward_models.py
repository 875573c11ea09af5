"""A tiny real reward model for the tests: a randomly initialised Llama sequence classifier
with one output, on the tests' tokenizer."""

from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForSequenceClassification

from demo.tiny.pretrain import tiny_llama_config


def build_reward_model(tokenizer_folder: Path, folder: Path, labels: int = 1, chat_template: bool = True) -> Path:
    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    if not chat_template:
        tokenizer.chat_template = None
    config = tiny_llama_config(tokenizer, hidden=64, layers=1, max_len=512)
    config.num_labels = labels
    torch.manual_seed(3)
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
