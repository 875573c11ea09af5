"""The MPO study on the SmolLM2 demo (`mpo-serve study`): what a researcher reproducing the
paper's table does, on the demo's three objectives.

- baselines.py: the retrained baselines' preference pairs (linear, max-min), pure;
- retrain.py: those baselines trained by the demo's own LoRA DPO on the demo's reference samples, timed;
- candidates.py: what is compared, and how each is asked for through the OpenAI API;
- answers.py: every candidate's answers to the held-out prompts, one file each (resumable);
- table.py: the table from the answers and the measured costs, pure; plot.py: its figure;
- run.py: the whole run (fits, baselines, servers, answers, table, plot) and its command line.
"""
