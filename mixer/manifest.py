"""The mixture manifest: which checkpoints make up the mixture and how it is served.

A manifest is a small YAML file; paths in it are relative to the file. Validation happens
here, at the edge, so the engine never starts on a mixture that cannot be served exactly:
every component must exist, all must share one tokenizer, names must be usable as module
prefixes and model ids, and the default weights must lie on the simplex. A policy may be a
PEFT LoRA adapter on the reference instead of a full checkpoint. Baselines are served alone,
never mixed: checkpoints, adapters, or reward soups of the policies. How LoRA components are
served (on one shared base, or merged into full sub-models) is chosen here too
(mixer.lora.mode), so a mixture that would not be exact never reaches the engine.
"""

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from mixer import ARCHITECTURE, SHARED_ARCHITECTURE
from mixer.lora import mode
from mixer.lora.adapter import AdapterError, read_adapter_config
from mixer.lora.merge import merge_adapter
from mixer.simplex import WeightsError, normalise_weights
from mixer.soups import SoupError, build_soup

logger = logging.getLogger(__name__)

MIXTURE_CONFIG_KEY = "mpo_mixture"
# How the shared base computes the adapters' deltas (server.settings: delta_matmul, delta_gemms),
# set on the model's config by the engine's hf_overrides.
DELTA_MATMUL_KEY = "mpo_delta_matmul"
DELTA_GEMMS_KEY = "mpo_delta_gemms"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
)
MARKER_FILE = "mixture.safetensors"


class ManifestError(ValueError):
    """A manifest that cannot be served; the message names the field and the bad value."""


class Component(BaseModel):
    """One checkpoint of the mixture under a short name: a Hugging Face model folder, a PEFT
    LoRA adapter on the reference, or (baselines only) a reward soup of the policies. An
    adapter's or soup's checkpoint, built at load, becomes its `path`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name: model id, weight key and module prefix.")
    path: Path | None = Field(None, description="Hugging Face model folder (config.json, weights, tokenizer).")
    adapter: Path | None = Field(None, description="PEFT LoRA adapter folder on the reference (instead of path).")
    soup: dict[str, float] | None = Field(
        None, description="Reward soup: weights by policy name; the policies' parameters interpolated (baselines)."
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        # vLLM derives layer indices from the single numeric part of a layer name, and the
        # name becomes a module attribute and a model id: lower-case identifiers only.
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"component name {name!r} must match {NAME_PATTERN.pattern} "
                "(lower-case letter first, then lower-case letters, digits or '_', at most 32)"
            )
        return name

    @model_validator(mode="after")
    def _one_source(self) -> "Component":
        if [self.path, self.adapter, self.soup].count(None) != 2:
            raise ValueError(
                f"component {self.name!r} needs exactly one of 'path' (a checkpoint), 'adapter' and 'soup'"
            )
        return self

    @property
    def folder(self) -> Path:
        """Its checkpoint folder: `path`, which an adapter or a soup gets once built at load."""
        if self.path is None:
            raise ManifestError(f"component {self.name!r} has no checkpoint folder: its adapter or soup is not built")
        return self.path


class AnswerSampling(BaseModel):
    """The length and temperature of answers sampled to be judged. Long enough that most answers
    end, or a length judge compares words per token of cut answers (bench.answer_length measures
    it); a temperature the judged fit can reproduce exactly (no top-k or top-p truncation)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(128, gt=0, description="Longest answer.")
    temperature: float = Field(1.0, gt=0, le=2, description="Sampling temperature.")


class Manifest(BaseModel):
    """A reference policy, the aligned policies, their default weights and engine limits."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("mpo-mixture", description="Model id of the mixture in the OpenAI API.")
    reference: Component = Field(description="The policy every other one was aligned from.")
    policies: list[Component] = Field(min_length=1, description="The aligned policies to mix.")
    baselines: list[Component] = Field(
        default_factory=list,
        description="Models served alone by their model id, never mixed or fitted (e.g. reward soups).",
    )
    weights: dict[str, float] = Field(description="Default weights by policy name (normalised to sum 1).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype in the engine.")
    max_model_len: int | None = Field(None, gt=0, description="Longest prompt+output; default: smallest component's.")
    kv_cache_gib: float = Field(1.0, gt=0, description="KV cache budget in GiB (CPU: VLLM_CPU_KVCACHE_SPACE).")
    tensor_parallel_size: int = Field(
        1, ge=1, description="Devices (CPU: processes, each on its own cores) every layer is split across."
    )
    distributed_executor_backend: Literal["mp", "ray"] | None = Field(
        None, description="How vLLM runs parallel ranks: 'mp' (processes on this machine), 'ray' (across nodes)."
    )
    pipeline_parallel_size: int = Field(
        1, ge=1, description="Stages the layers are split into; only 1 for now (see the validator)."
    )
    lora_mode: Literal["auto", "shared", "merged"] = Field(
        "auto",
        description="LoRA components on one shared base ('shared'), as merged full sub-models ('merged'), or "
        "shared wherever that is exact ('auto'; mixer.lora.mode).",
    )
    tool_call_parser: str | None = Field(
        None,
        description="vLLM's tool-call parser for the components' output (e.g. hermes, llama3_json, mistral), "
        "needed for tool_choice 'auto'; 'required' and a named function work without one.",
    )
    tool_strict_level: Literal["auto", "function", "parameter"] = Field(
        "auto",
        description="vLLM's --tool-strict-level for parsers with structural tags (hermes...): how much of a call "
        "the grammar pins: 'auto' the envelope when a call is forced and the arguments of tools with strict: true, "
        "'function' the envelope always, 'parameter' every tool's arguments too.",
    )
    objectives: dict[str, str] = Field(
        default_factory=dict,
        description="What each policy was aligned for: policy name -> scorer (scorers.get_scorer: sentiment, "
        "concise, reward_model:<folder>, python:<module>:<function>). The playground scores answers on them; "
        "the CLI's fit (--scorers) and eval use them by default.",
    )
    prompts: dict[str, Path] = Field(
        default_factory=dict,
        description="Named prompt files (JSONL, one {prompt} or {messages} a line, or preference pairs) shipped with "
        "the mixture, e.g. fit and eval splits; the playground's jobs panel offers them.",
    )
    answers: AnswerSampling = Field(
        default_factory=AnswerSampling,
        description="How answers are sampled where a job samples answers to judge (an eval's, a judged fit's) "
        "unless the job says otherwise.",
    )
    _serving: mode.Serving | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _safe_mixture_name(cls, name: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", name):
            raise ValueError(f"mixture name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        return name

    @field_validator("prompts")
    @classmethod
    def _prompt_set_names(cls, prompts: dict[str, Path]) -> dict[str, Path]:
        bad = [name for name in prompts if not NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"prompt set names {bad} must match {NAME_PATTERN.pattern}")
        return prompts

    @field_validator("tool_call_parser")
    @classmethod
    def _known_tool_parser(cls, name: str | None) -> str | None:
        if name is None:
            return None
        from vllm.tool_parsers import ToolParserManager

        known = ToolParserManager.list_registered()
        if name not in known:
            raise ValueError(f"tool_call_parser {name!r} is not one of vLLM's tool-call parsers: {known}")
        return name

    @field_validator("pipeline_parallel_size")
    @classmethod
    def _no_pipeline_stages_yet(cls, stages: int) -> int:
        """vLLM runs pipeline stages only for models that pass each stage's hidden states and
        residuals on (SupportsPP); the mixture would have to do it per component, for the
        components each step runs. Until it does, say so here rather than at engine start."""
        if stages > 1:
            raise ValueError(
                "pipeline_parallel_size > 1 is not supported by the mixture model yet; "
                "use tensor_parallel_size (vLLM also runs it across nodes with Ray)"
            )
        return stages

    @model_validator(mode="after")
    def _check_names_and_weights(self) -> "Manifest":
        names = [c.name for c in self.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"component names must be unique; repeated: {duplicates}")
        if self.name in names:
            raise ValueError(f"mixture name {self.name!r} must differ from the component names {names}")
        if self.reference.path is None:
            raise ValueError("the reference must be a full checkpoint ('path'); adapters apply to it")
        unknown = sorted(set(self.objectives) - set(self.policy_names))
        if unknown:
            raise ValueError(f"objectives {unknown} are not policies; objectives name policies {self.policy_names}")
        souped = [p.name for p in self.policies if p.soup is not None]
        if souped:
            raise ValueError(f"policies {souped} are soups; a soup is served alone: declare it under 'baselines'")
        try:
            self.weights = normalise_weights(self.weights, self.policy_names)
            for baseline in self.baselines:
                if baseline.soup is not None:
                    baseline.soup = normalise_weights(baseline.soup, self.policy_names)
        except WeightsError as err:
            raise ValueError(str(err)) from None
        return self

    @property
    def components(self) -> list[Component]:
        """Reference first, then the policies, then the baselines: the engine's sub-models."""
        return [self.reference, *self.policies, *self.baselines]

    @property
    def adapters(self) -> list[Component]:
        return [c for c in self.components if c.adapter is not None]

    @property
    def adapter_folders(self) -> list[tuple[Component, Path]]:
        """Each adapter component with its adapter's folder."""
        return [(c, c.adapter) for c in self.components if c.adapter is not None]

    @property
    def soups(self) -> list[Component]:
        return [c for c in self.baselines if c.soup is not None]

    def role(self, component: Component) -> str:
        if component is self.reference:
            return "reference"
        return "policy" if any(component is p for p in self.policies) else "baseline"

    @property
    def serving(self) -> mode.Serving:
        """The mode the manifest is served in (chosen by load_manifest)."""
        if self._serving is None:
            raise ManifestError("the serving mode is chosen when the manifest is loaded (load_manifest)")
        return self._serving

    @property
    def objective_names(self) -> list[str]:
        """What a preference or a judged reward may be for: the objectives the manifest names,
        or the policies where it names none (each policy was aligned for one)."""
        return list(self.objectives) or self.policy_names

    @property
    def policy_names(self) -> list[str]:
        return [p.name for p in self.policies]

    def weight_vector(self, weights: dict[str, float] | None = None) -> list[float]:
        """Weights over all components (reference and baselines 0), from policy weights."""
        chosen = self.weights if weights is None else weights
        return [0.0] + [chosen.get(name, 0.0) for name in self.policy_names] + [0.0] * len(self.baselines)


def load_manifest(path: str | Path, merge_dir: Path | None = None) -> Manifest:
    """Read, resolve and fully validate a manifest file (including the checkpoints), and
    choose how its LoRA components are served (one log line says which and why).

    Adapters are checked; when they are served merged and a merge_dir is given, they are
    merged into the reference (cached there), each adapter component's `path` becomes its
    merged checkpoint, and soups are built. Served shared, nothing is merged or built."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ManifestError(f"manifest {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest {str(path)!r} must be a YAML mapping")
    base = path.resolve().parent
    for entry in [raw.get("reference"), *(raw.get("policies") or []), *(raw.get("baselines") or [])]:
        for key in ("path", "adapter"):
            if isinstance(entry, dict) and entry.get(key) is not None:
                entry[key] = str((base / str(entry[key])).resolve())
    if isinstance(raw.get("prompts"), dict):
        raw["prompts"] = {name: str((base / str(file)).resolve()) for name, file in raw["prompts"].items()}
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise ManifestError(f"invalid manifest {str(path)!r}: {problems}") from None
    missing = {name: str(file) for name, file in manifest.prompts.items() if not file.is_file()}
    if missing:
        raise ManifestError(f"invalid manifest {str(path)!r}: prompts: files do not exist: {missing}")
    try:
        for component, adapter in manifest.adapter_folders:
            read_adapter_config(component.name, adapter)
        check_checkpoints(manifest)
        manifest._serving = mode.choose(manifest)
        logger.info("mixture %r: %s", manifest.name, manifest.serving.describe())
        if merge_dir is not None and manifest.serving.mode == "merged":
            merge_adapters(manifest, merge_dir)
            build_soups(manifest, merge_dir)
    except (AdapterError, SoupError) as err:
        raise ManifestError(f"invalid manifest {str(path)!r}: {err}") from None
    return manifest


def merge_adapters(manifest: Manifest, merge_dir: Path) -> None:
    """Point every adapter component at its merged checkpoint (merged once, then cached)."""
    for component, adapter in manifest.adapter_folders:
        component.path = merge_adapter(
            component.name, adapter, manifest.reference.folder, Path(merge_dir), TOKENIZER_FILES
        )


def build_soups(manifest: Manifest, merge_dir: Path) -> None:
    """Point every soup at its checkpoint (built once from the policies, then cached)."""
    checkpoints = {p.name: p.path for p in manifest.policies if p.path is not None}
    adapters = {p.name: p.adapter for p in manifest.policies if p.adapter is not None}
    for soup in manifest.soups:
        soup.path = build_soup(
            soup.name,
            soup.soup or {},
            checkpoints,
            adapters,
            manifest.reference.folder,
            Path(merge_dir),
            TOKENIZER_FILES,
        )


def _read_config(component: Component) -> dict:
    config = component.folder / "config.json"
    if not config.is_file():
        raise ManifestError(f"component {component.name!r}: {str(config)!r} does not exist")
    return json.loads(config.read_text())


def _tokenizer_fingerprint(path: Path) -> str:
    """Hash of the files that define tokenisation and the chat template."""
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def check_checkpoints(manifest: Manifest) -> None:
    """Paths exist, tokenizers are identical, and max_model_len fits every component.

    Adapters and soups share the reference's tokenizer and context by construction."""
    fingerprints = {}
    limits = []
    for component in manifest.components:
        if component.adapter is not None or component.soup is not None:
            continue
        config = _read_config(component)
        limits.append(config.get("max_position_embeddings", 1 << 30))
        fingerprints[component.name] = _tokenizer_fingerprint(component.folder)
    reference = manifest.reference.name
    if (
        not (manifest.reference.folder / "tokenizer.json").is_file()
        and not (manifest.reference.folder / "tokenizer.model").is_file()
    ):
        raise ManifestError(f"reference {reference!r} has no tokenizer files in {str(manifest.reference.path)!r}")
    differing = [n for n, f in fingerprints.items() if f != fingerprints[reference]]
    if differing:
        raise ManifestError(
            f"components {differing} have a tokenizer different from reference {reference!r}; "
            "log-linear mixing needs one shared tokenizer"
        )
    smallest = min(limits)
    if manifest.max_model_len is None:
        manifest.max_model_len = smallest
    elif manifest.max_model_len > smallest:
        raise ManifestError(f"max_model_len {manifest.max_model_len} exceeds the smallest component's {smallest}")


def write_model_folder(manifest: Manifest, folder: str | Path) -> Path:
    """Write the folder vLLM loads as one model: the reference's config with our architecture
    (the shared-base or the merged mixture model) and a section listing the components (shared:
    the LoRA terms each adds to the base; merged: each one's checkpoint), its tokenizer files,
    and a tiny safetensors file (vLLM refuses a primary weight source without one). Rewritten
    atomically when it changes."""
    import torch
    from safetensors.torch import save_file  # heavy import only when writing

    folder = Path(folder)
    shared = manifest.serving.mode == "shared"
    unmerged = [c.name for c in manifest.components if c.path is None]
    if unmerged and not shared:
        raise ManifestError(f"adapters or soups {unmerged} are not built yet: load the manifest with a merge_dir")
    config = _read_config(manifest.reference)
    config["architectures"] = [SHARED_ARCHITECTURE if shared else ARCHITECTURE]
    config["torch_dtype"] = manifest.dtype
    config["max_position_embeddings"] = manifest.max_model_len
    components = []
    for c in manifest.components:
        entry: dict[str, object] = {"name": c.name, "role": manifest.role(c)}
        if shared:
            entry |= {"path": str(manifest.reference.path), "lora": mode.lora_terms(manifest, c)}
        else:
            entry["path"] = str(c.path)
        components.append(entry)
    config[MIXTURE_CONFIG_KEY] = {
        "name": manifest.name,
        "components": components,
        "default_weights": manifest.weight_vector(),
    }
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        source = manifest.reference.folder / name
        if source.is_file():
            shutil.copy(source, staging / name)
    save_file({"mpo_mixture.marker": torch.zeros(1)}, str(staging / MARKER_FILE))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder
