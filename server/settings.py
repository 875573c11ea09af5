"""One settings object, read from the environment (prefix MPO_) or a .env file."""

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_TOKENS = {"changeme", "change-me", "secret", "token", "admin", "password", "xxx"}


def default_data_dir() -> Path:
    return Path.home() / ".cache" / "mpo-serve"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MPO_", env_file=".env", extra="ignore")

    manifest: Path | None = Field(None, description="Mixture manifest; none: the embedded demo (built if absent).")
    demo: Literal["smollm2", "tiny"] = Field(
        "smollm2", description="The embedded demo served without a manifest: SmolLM2-135M policies, or tiny ones."
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Demo models and generated model folders.")
    store_path: Path | None = Field(None, description="SQLite weight store; default: <data_dir>/weights.sqlite.")
    store_url: str | None = Field(
        None, description="A database URL (postgresql://user:pass@host/db) shared by replicas; overrides store_path."
    )
    replica_name: str | None = Field(
        None, description="This server's name in the shared store (job owner); default: <hostname>:<port>."
    )
    job_lease_s: float = Field(
        10.0, gt=0, description="A running job whose replica sent no heartbeat for this long is marked failed."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = Field(None, description="Bearer token for /admin; unset: admin is refused (401).")
    api_keys: str | None = Field(
        None, description="Comma-separated keys, one of which /v1 requests must send as a bearer token; unset: open."
    )
    max_num_seqs: int = Field(64, gt=0, description="Most requests decoded together (continuous batching).")
    max_waiting: int = Field(
        128,
        ge=0,
        description="Most OpenAI requests waiting for an engine slot (beyond max_num_seqs decoding); more get 503 "
        "server_is_overloaded with Retry-After at once.",
    )
    max_in_flight_per_key: int | None = Field(
        None, gt=0, description="With API keys: most requests one key may have in flight; more get 429."
    )
    retry_after_s: float = Field(1.0, gt=0, description="Retry-After of refusals (overload, drain, store away).")
    drain_s: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM: how long requests in flight may take to finish (new ones get 503) before exit.",
    )
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    max_logprobs: int = Field(20, ge=0, description="Most top log-probs a request may ask for.")
    enforce_eager: bool = Field(
        True, description="Skip torch.compile and CUDA graphs (CPU gains nothing measurable, start-up is faster)."
    )
    delta_matmul: Literal["engine", "torch"] = Field(
        "engine",
        description="Shared base: the adapters' delta GEMMs by the engine's CPU GEMM (oneDNN, batch-invariant) "
        "or by torch, the path CUDA takes (forced on CPU, it lets tests run that path).",
    )
    delta_gemms: Literal["stacked", "per_component"] = Field(
        "stacked",
        description="Shared base: every component's deltas on a layer in one down and one up GEMM (stacked), or "
        "two GEMMs per component and layer (the earlier path, kept for the bench's comparison).",
    )
    seed: int = 0

    @field_validator("manifest", "store_url", "replica_name", "max_in_flight_per_key", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        """An empty variable (compose passes unset ones as "") is unset: the demo, SQLite, ..."""
        return None if value == "" else value

    @field_validator("admin_token")
    @classmethod
    def _no_placeholder(cls, token: str | None) -> str | None:
        if token is None or token == "":
            return None
        if token.lower() in PLACEHOLDER_TOKENS or len(token) < 8:
            raise ValueError("MPO_ADMIN_TOKEN must be a real secret of at least 8 characters, not a placeholder")
        return token

    @field_validator("api_keys")
    @classmethod
    def _real_keys(cls, keys: str | None) -> str | None:
        if keys is None or not keys.strip():
            return None
        if any(not key.strip() for key in keys.split(",")):
            raise ValueError("MPO_API_KEYS must be keys separated by commas, none of them empty")
        return keys

    @property
    def api_key_list(self) -> list[str]:
        """The accepted /v1 keys; empty when /v1 is open."""
        return [key.strip() for key in self.api_keys.split(",")] if self.api_keys else []

    @property
    def weight_store(self) -> str | Path:
        """Where the weight store is: a database URL, or a SQLite file."""
        return self.store_url or self.store_path or self.data_dir / "weights.sqlite"

    @property
    def replica(self) -> str:
        return self.replica_name or f"{socket.gethostname()}:{self.port}"

    @property
    def merged_dir(self) -> Path:
        """LoRA adapters merged into their reference, cached by content (mixer.lora.merge)."""
        return self.data_dir / "merged"

    @property
    def eval_dir(self) -> Path:
        """Answers of finished eval jobs, one JSONL file each (server.jobs.eval_jobs)."""
        if self.store_url:
            return self.data_dir / "evals"
        return Path(self.weight_store).parent / "evals"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demos" / self.demo
