"""The mixture's own prompt files (the manifest's `prompts`, e.g. a demo's fit and eval
splits), offered to whoever starts a job without a file of their own (the playground's jobs
panel, `GET /admin/prompts`)."""

from pathlib import Path

from mixer.manifest import Manifest
from server.exceptions import NotFound


class PromptSets:
    def __init__(self, manifest: Manifest) -> None:
        self.files: dict[str, Path] = dict(manifest.prompts)

    def list(self) -> dict:
        return {
            "data": [
                {"name": name, "prompts": sum(1 for line in path.open() if line.strip())}
                for name, path in self.files.items()
            ]
        }

    def path(self, name: str) -> Path:
        if name not in self.files:
            raise NotFound(f"prompt set {name!r} does not exist; the mixture has {sorted(self.files)}", param="name")
        return self.files[name]
