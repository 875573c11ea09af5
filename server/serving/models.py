"""GET /v1/models: the mixture, each component alone, and each stored weight set
('<mixture>@<id>'), every one a model id a request may name; GET /v1/mixture: how the mixture
is made (policies, default weights, objectives), what a client choosing weights needs. Ids and
names only, no file-system paths (those are the admin API's)."""

import time
from collections.abc import Callable

from server.serving.engine_client import EngineClient
from server.serving.objectives import Objectives


class ModelList:
    def __init__(
        self,
        client: EngineClient,
        objectives: Objectives,
        weight_sets: Callable[[], list[dict]],
        active_set_id: Callable[[], int | None],
    ) -> None:
        self.client = client
        self.objectives = objectives
        self.weight_sets = weight_sets  # the stored sets, oldest first: {id, weights, source}
        self.active_set_id = active_set_id
        self.created = int(time.time())

    def mixture(self) -> dict:
        mixture = self.client.mixture
        manifest = mixture.manifest
        return {
            "id": mixture.name,
            "reference": manifest.reference.name,
            "policies": manifest.policy_names,
            "baselines": [b.name for b in manifest.baselines],
            "default_weights": dict(mixture.default_weights),
            "active_weight_set": self.active_set_id(),
            "weight_sets": self.weight_sets(),
            "objectives": self.objectives.describe(),
            "max_model_len": self.client.max_model_len,
        }

    def list(self) -> dict:
        mixture = self.client.mixture
        entries = [{"id": mixture.name, "root": mixture.name, "mpo_role": "mixture"}]
        for component in mixture.manifest.components:
            entries.append({"id": component.name, "root": component.name, "mpo_role": mixture.manifest.role(component)})
        for weight_set in self.weight_sets():
            entries.append({"id": f"{mixture.name}@{weight_set['id']}", "root": mixture.name, "mpo_role": "weight_set"})
        common = {"object": "model", "created": self.created, "owned_by": "mpo-serve"}
        return {
            "object": "list",
            "data": [{**e, **common, "max_model_len": self.client.max_model_len} for e in entries],
        }
