"""The tiny demo: a 1.3 M-parameter Llama pretrained on a shipped corpus of fortunes and two
copies aligned from it by DPO; builds in minutes, for tests and quick starts."""
