"""Alembic migrations of the weight store, applied by store.weight_store when a store is opened."""
