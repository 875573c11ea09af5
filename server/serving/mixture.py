"""What the server knows about the mixture it serves: components, default weights, and how
a request's `model` and `mixture` fields become the weight vector the engine runs with."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mixer.manifest import Manifest
from mixer.simplex import WeightsError, normalise_weights
from server.exceptions import InvalidRequest, NotFound


@dataclass(frozen=True)
class ResolvedMixture:
    """The weights one request runs with, over all components (reference first)."""

    model: str  # the model id echoed in the response
    vector: list[float]
    kind: str  # how the weights were chosen: mixture_default, explicit_weights, weight_set, component


class MixtureState:
    """The manifest and the current default weights (by policy name, summing to 1)."""

    def __init__(self, manifest: Manifest, stored_weights: Callable[[int], Awaitable[dict[str, float] | None]]) -> None:
        self.manifest = manifest
        self.default_weights: dict[str, float] = dict(manifest.weights)
        self.stored_weights = stored_weights  # a stored weight set's weights by id (None: no such set)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def component_names(self) -> list[str]:
        return [c.name for c in self.manifest.components]

    def model_ids(self) -> list[str]:
        return [self.name, *self.component_names]

    def validate_weights(self, weights: object, param: str) -> dict[str, float]:
        """Policy weights on the simplex, or InvalidRequest naming the problem."""
        try:
            return normalise_weights(weights, self.manifest.policy_names)  # type: ignore[arg-type]
        except WeightsError as err:
            raise InvalidRequest(str(err), param=param) from None

    def vector(self, weights: dict[str, float]) -> list[float]:
        return self.manifest.weight_vector(weights)

    def one_hot(self, component: str) -> list[float]:
        return [1.0 if name == component else 0.0 for name in self.component_names]

    def fits(self, weights: dict[str, float]) -> bool:
        """Whether stored weights name exactly this mixture's policies."""
        return sorted(weights) == sorted(self.manifest.policy_names)

    def check_fits(self, set_id: int, weights: dict[str, float]) -> None:
        if not self.fits(weights):
            raise InvalidRequest(f"weight set {set_id} names policies {sorted(weights)} not in this mixture")

    def stored_set_id(self, model: str) -> int | None:
        """The weight-set id in a model id '<mixture>@<id>', else None."""
        prefix = self.name + "@"
        if model.startswith(prefix) and model[len(prefix) :].isdigit():
            return int(model[len(prefix) :])
        return None

    async def resolve(self, model: str, weights: dict | None) -> ResolvedMixture:
        """`model` names the mixture (default or given weights), a stored weight set
        ('<mixture>@<id>'), or one component alone.

        Every request carries its weights explicitly, taken when it is admitted, so a later
        change of the defaults never alters a response half-way."""
        if model == self.name:
            if weights is None:
                return ResolvedMixture(model, self.vector(self.default_weights), "mixture_default")
            chosen = self.validate_weights(weights, "mixture.weights")
            return ResolvedMixture(model, self.vector(chosen), "explicit_weights")
        set_id = self.stored_set_id(model)
        if set_id is not None and (stored := await self.stored_weights(set_id)) is not None:
            if weights is not None:
                raise InvalidRequest(
                    f"model {model!r} is a stored weight set; per-request weights need model {self.name!r}"
                )
            self.check_fits(set_id, stored)
            return ResolvedMixture(model, self.vector(stored), "weight_set")
        if model in self.component_names:
            if weights is not None:
                raise InvalidRequest(
                    f"model {model!r} is a single component; per-request weights need model {self.name!r}",
                    param="mixture",
                )
            return ResolvedMixture(model, self.one_hot(model), "component")
        raise NotFound(
            f"the model {model!r} does not exist; available: {self.model_ids()}",
            param="model",
            code="model_not_found",
        )
