"""Preference votes in the store: a person's choice between two answers to one prompt, for one
objective (the playground's blind compare casts them), kept with the mixture they were cast on,
when, and which API key cast them. Read back in order, they are a batch of preference pairs
(server.preferences), which the pair eval and the pair fit take as they take an uploaded file.

Only a fingerprint of the key is kept: the store never holds a secret that opens /v1."""

import json
import time

import sqlalchemy as sa

from store.schema import votes
from store.weight_store import WeightStore


def add_vote(store: WeightStore, vote: dict) -> int:
    """vote: voter, objective, prompt (text or messages), chosen, rejected, and the settings
    that answered (chosen_setting, rejected_setting); returns its id."""
    row = {
        "mixture": store.mixture,
        "created": time.time(),
        "voter": vote.get("voter"),
        "objective": vote["objective"],
        "prompt": json.dumps(vote["prompt"]),
        "chosen": vote["chosen"],
        "rejected": vote["rejected"],
        "chosen_setting": json.dumps(vote.get("chosen_setting")),
        "rejected_setting": json.dumps(vote.get("rejected_setting")),
    }
    with store.transaction() as db:
        return db.execute(votes.insert().values(**row).returning(votes.c.id)).scalar_one()


def list_votes(store: WeightStore, objective: str | None = None) -> list[dict]:
    """The mixture's votes, oldest first (optionally one objective's)."""
    query = sa.select(votes).where(votes.c.mixture == store.mixture)
    if objective is not None:
        query = query.where(votes.c.objective == objective)
    with store.transaction() as db:
        rows = db.execute(query.order_by(votes.c.id)).all()
    result = []
    for row in rows:
        vote = dict(row._mapping)
        for key in ("prompt", "chosen_setting", "rejected_setting"):
            vote[key] = json.loads(vote[key]) if vote[key] is not None else None
        result.append(vote)
    return result
