"""`reward_model:<folder>`: a transformers sequence-classification model with one output, the
reward. Batched, on the GPU when there is one. A chat prompt (or a tokenizer with a chat
template) is rendered as the conversation with the response as the assistant's turn; without
a template the prompt and response are encoded as a text pair, as BERT-style reward models
were trained."""

from collections.abc import Sequence
from pathlib import Path

from scorers.base import Prompt, Scorer, ScorerError, prompt_text

BATCH_SIZE = 16


class RewardModel:
    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not (folder / "config.json").is_file():
            raise ScorerError(f"reward model {str(folder)!r} is not a model folder (no config.json)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as err:
            raise ScorerError(f"reward model {str(folder)!r} could not be loaded: {err}") from None
        if self.model.config.num_labels != 1:
            raise ScorerError(
                f"reward model {str(folder)!r} has {self.model.config.num_labels} outputs; a reward model has one"
            )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self.max_length = getattr(self.model.config, "max_position_embeddings", None) or 512

    def _encode(self, prompts: Sequence[Prompt], responses: Sequence[str]):
        options = {"return_tensors": "pt", "padding": True, "truncation": True, "max_length": self.max_length}
        if self.tokenizer.chat_template is not None:
            chats = [
                (p if isinstance(p, list) else [{"role": "user", "content": p}]) + [{"role": "assistant", "content": r}]
                for p, r in zip(prompts, responses, strict=True)
            ]
            texts = [self.tokenizer.apply_chat_template(chat, tokenize=False) for chat in chats]
            return self.tokenizer(texts, add_special_tokens=False, **options)
        return self.tokenizer([prompt_text(p) for p in prompts], list(responses), **options)

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        import torch

        rewards: list[float] = []
        with torch.no_grad():
            for start in range(0, len(responses), BATCH_SIZE):
                batch = self._encode(prompts[start : start + BATCH_SIZE], responses[start : start + BATCH_SIZE])
                logits = self.model(**batch.to(self.device)).logits
                rewards.extend(logits[:, 0].float().cpu().tolist())
        return rewards


def reward_model_scorer(spec: str, location: str) -> Scorer:
    folder = Path(location).expanduser()
    if not folder.is_dir():
        raise ScorerError(f"reward model folder {location!r} does not exist")
    return Scorer(spec, "higher", "reward model logit", RewardModel(folder))
