"""Evaluation of candidates (policies, mixtures, weight sets, soups) on several objectives:
statistics (evaluation.stats), the result table (evaluation.table) and its picture
(evaluation.plot). Pure Python and matplotlib; the server's eval jobs feed them."""
