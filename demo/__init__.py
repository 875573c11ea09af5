"""The embedded demo mixture: a tiny reference model pretrained on a shipped English corpus
and two policies aligned from it by DPO for objectives that are scored automatically."""
