"""GET /v1/models: the mixture, each component alone, and each stored weight set
('<mixture>@<id>'), every one a model id a request may name. Ids only, no file-system paths."""

import time
from collections.abc import Callable

from server.serving.engine_client import EngineClient


class ModelList:
    def __init__(self, client: EngineClient, weight_set_ids: Callable[[], list[int]]) -> None:
        self.client = client
        self.weight_set_ids = weight_set_ids
        self.created = int(time.time())

    def list(self) -> dict:
        mixture = self.client.mixture
        entries = [{"id": mixture.name, "root": mixture.name, "mpo_role": "mixture"}]
        for component in mixture.manifest.components:
            entries.append({"id": component.name, "root": component.name, "mpo_role": mixture.manifest.role(component)})
        for set_id in self.weight_set_ids():
            entries.append({"id": f"{mixture.name}@{set_id}", "root": mixture.name, "mpo_role": "weight_set"})
        common = {"object": "model", "created": self.created, "owned_by": "mpo-serve"}
        return {
            "object": "list",
            "data": [{**e, **common, "max_model_len": self.client.max_model_len} for e in entries],
        }
