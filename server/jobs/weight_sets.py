"""The mixture's stored weight sets, kept in memory.

A weight set never changes once stored, so serving '<mixture>@<id>' and listing the sets
(/v1/models, /v1/mixture) read no database: they keep working, at full speed, while the
database is slow or away. The replica sync adds the sets any replica stored since its last
poll (`refresh`) and rereads them all now and then (`refresh(full=True)`: PostgreSQL may commit
a lower id after a higher one, which an incremental poll would step over); a set asked for
before a poll has seen it is read from the store once (`get`).
"""

from store.async_store import AsyncWeightStore
from store.weight_store import WeightSet


class KnownWeightSets:
    def __init__(self, store: AsyncWeightStore) -> None:
        self.store = store
        self._sets: dict[int, WeightSet] = {}

    def add(self, weight_set: WeightSet) -> None:
        self._sets[weight_set.id] = weight_set

    async def refresh(self, full: bool = False) -> None:
        after = 0 if full else max(self._sets, default=0)
        for weight_set in await self.store.history(after):
            self.add(weight_set)

    async def get(self, set_id: int) -> WeightSet | None:
        known = self._sets.get(set_id)
        if known is None:
            known = await self.store.get(set_id)
            if known is not None:
                self.add(known)
        return known

    def all(self) -> list[WeightSet]:
        """Oldest first."""
        return [self._sets[set_id] for set_id in sorted(self._sets)]
