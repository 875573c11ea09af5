"""Everything about the mixture weights lambda: validation on the simplex (and, later, the
MPO solver and the store). Pure math: no vLLM and no FastAPI import."""
