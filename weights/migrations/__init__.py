"""Alembic migrations of the weight store, applied by weights.store when a store is opened."""
