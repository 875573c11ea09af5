"""The MPO weight math: the mirror-descent solver (solver.py) and its trajectory plot
(plot.py). Pure numpy and matplotlib: no vLLM, no HTTP, no store. Weights on the simplex are
validated by mixer.simplex, which the plugin needs too."""
