"""`mpo-serve study`: the whole study on a built SmolLM2 demo, resumable.

1. the retrained baselines (study.retrain), unless already in OUT/baselines;
2. a server of the demo's mixture plus its baselines (the two retrained ones, the uniform soup)
   on a store of its own (OUT/server), started here: the study is one command, not a recipe;
3. the fits (study.candidates.FITS) on the demo's fit prompts (the pair fit on its fit pairs),
   each timed by the CPU time of the server's processes while it runs, stored as weight sets;
4. every candidate's answers to the held-out prompts (study.answers), one file each, scored by
   the training and the held-out judges (study.judges);
5. the soup with the weights of the fit with the best Min (a second server, with that soup);
6. OUT/table.md and OUT/study.png from the files (study.table, study.plot).

What is done is kept: OUT/costs.json (measured CPU and wall seconds: the demo build's samples
and DPO runs, the retraining, fits and soups), OUT/fits.json, OUT/answers/<candidate>.jsonl.
A second run skips every finished step, so a run cut short resumes, and a finished candidate
is never answered again. The best fit is chosen by its Min on the held-out prompts; that uses
them for one choice (which weights to soup), stated beside the table.
"""

import argparse
import json
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx
import yaml

from client.jobs import JobClient
from demo.cost import Timer
from demo.smollm2.build import ANSWERS, ObjectiveSetup
from demo.smollm2.lora_dpo import LoraDpoConfig
from launchers.processes import MpoServer
from study.answers import answer_candidate, finished, read_answers
from study.arguments import EVAL_PROMPTS
from study.baselines import KINDS
from study.candidates import FITS, Candidate, uniform
from study.judges import describe, judge_sets
from study.plot import study_png
from study.retrain import RetrainConfig, retrain
from study.table import markdown, study_rows


@dataclass(frozen=True)
class StudyConfig:
    eval_prompts: int = EVAL_PROMPTS
    # How every candidate answers (and the judged fit samples): as the demo's evals answer, long
    # enough that the reference's answers end where they ever do (docs/study.md, "Answers that end").
    max_tokens: int = ANSWERS["max_tokens"]
    temperature: float = ANSWERS["temperature"]
    seed: int = 0
    concurrency: int = 32  # requests in flight while a candidate answers (its tokens/s)
    fit_prompts: int = 64
    fit: dict = field(
        default_factory=lambda: {"samples_per_prompt": 4, "max_tokens": 48, "iterations": 500, "batch_size": 16}
    )
    judged_prompts: int = 32
    judged: dict = field(default_factory=dict)  # the judged fit's options beyond its defaults
    fit_pairs: int | None = None  # the demo's fit pairs the pair fit gets (None: all)
    llm_judge: bool = False  # a third set of judges: a language model (MPO_JUDGE_*), study.judges
    retrain: RetrainConfig = RetrainConfig()


def smoke_config() -> StudyConfig:
    """Every step on a few prompts and tokens, for tests: numbers mean nothing."""
    tiny = RetrainConfig(setup=ObjectiveSetup(0.0, False, LoraDpoConfig(steps=2, pairs_per_step=2)))
    fit = {"samples_per_prompt": 2, "max_tokens": 4, "iterations": 20, "batch_size": 2}
    return StudyConfig(
        eval_prompts=3,
        max_tokens=6,
        concurrency=4,
        fit_prompts=3,
        fit=fit,
        judged_prompts=2,
        judged={"samples_per_prompt": 2, "iterations": 20},
        fit_pairs=6,
        retrain=tiny,
    )


class StudyMismatch(ValueError):
    """A folder that holds a study made with other settings: its answers would not compare."""


class Study:
    def __init__(self, demo: Path, out: Path, config: StudyConfig) -> None:
        self.demo, self.out, self.config = demo.resolve(), out.resolve(), config
        self.manifest = yaml.safe_load((self.demo / "manifest.yaml").read_text())
        self.policies = [p["name"] for p in self.manifest["policies"]]
        self.objectives: dict[str, str] = self.manifest["objectives"]
        self.token = secrets.token_urlsafe(16)
        self.out.mkdir(parents=True, exist_ok=True)

    # -- files kept between runs ---------------------------------------------------------------

    def _read(self, name: str) -> dict:
        path = self.out / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def _write(self, name: str, data: dict) -> None:
        staging = self.out / f"{name}.tmp"
        staging.write_text(json.dumps(data, indent=2))
        staging.replace(self.out / name)

    def _add_cost(self, key: str, seconds: dict) -> None:
        self._write("costs.json", self._read("costs.json") | {key: seconds})

    # -- the steps ------------------------------------------------------------------------------

    def run(self) -> str:
        began = time.perf_counter()
        stored = self._read("study.json").get("config")
        wanted = json.loads(json.dumps(asdict(self.config)))
        if stored is not None and {k: stored.get(k, v) for k, v in wanted.items()} != wanted:
            # (a setting added since the study was made counts as its value now)
            raise StudyMismatch(
                f"{self.out} holds a study made with other settings ({stored}); resume it with the same "
                "options or start a new one in another --out folder"
            )
        build = json.loads((self.demo / "build.json").read_text())
        for key, seconds in build["timings"].items():  # the demo's samples and each policy's DPO run
            self._add_cost(key, seconds)
        for kind, cost in retrain(
            self.demo, self.out / "baselines", list(KINDS), self.policies, self.config.retrain
        ).items():
            self._add_cost(f"retrain:{kind}", {"wall_s": cost["wall_s"], "cpu_s": cost["cpu_s"]})
        self._soup("soup_uniform", uniform(self.policies))
        if self.pending(first_server=True):
            with self._server(with_best_soup=False) as server:
                fits = self._fits(server.url)
                for candidate in self._candidates(fits, None):
                    if not self._done(candidate):
                        self._answer(server.url, candidate)
        fits = self._read("fits.json")
        self._write_meta(self._candidates(fits, None), None)
        best = max(FITS, key=lambda name: self._row(name)["min"]["mean"])
        self._soup("soup_best", fits[best]["weights"])
        self._write_meta(self._candidates(fits, best), best)
        soup_best = self._candidates(fits, best)[-1]
        if not self._done(soup_best):
            with self._server(with_best_soup=True) as server:
                self._answer(server.url, soup_best)
        objectives, rows = study_rows(self.out)
        table = markdown(objectives, rows)
        (self.out / "table.md").write_text(table + "\n")
        title = f"MPO study on the SmolLM2 demo: {len(self._prompts())} held-out prompts, seed {self.config.seed}"
        (self.out / "study.png").write_bytes(study_png(objectives, rows, title))
        meta = self._read("study.json")
        self._write("study.json", meta | {"last_run_wall_s": round(time.perf_counter() - began, 1)})
        return table

    def pending(self, first_server: bool = False) -> list[str]:
        """What a run would still do: fits not stored, candidates not answered (with
        first_server, only what the first server does: all but the best fit's soup)."""
        fits = self._read("fits.json")
        todo = [f"fit:{name}" for name in FITS if name not in fits]
        best = None if first_server else self._read("study.json").get("best_fit") or "?"
        candidates = self._candidates({name: fits.get(name, {"weight_set": "?"}) for name in FITS}, best)
        return todo + [c.name for c in candidates if not self._done(c)]

    def _candidates(self, fits: dict, best: str | None) -> list[Candidate]:
        name = self.manifest["name"]
        found = [Candidate("ref", "reference", self.manifest["reference"]["name"])]
        found += [Candidate(p, "policy", p) for p in self.policies]
        found.append(Candidate("uniform", "mixture", name, uniform(self.policies)))
        found += [Candidate(f, "fit", f"{name}@{fits[f]['weight_set']}") for f in FITS if f in fits]
        found.append(Candidate("soup_uniform", "soup", "soup_uniform"))
        found += [Candidate(kind, "retrained", kind) for kind in KINDS]
        if best is not None:
            found.append(Candidate("soup_best", "soup", "soup_best"))
        return found

    def _write_meta(self, candidates: list[Candidate], best: str | None) -> None:
        fits = self._read("fits.json")
        weights = {c.name: c.weights or fits.get(c.name, {}).get("weights") for c in candidates}
        self._write(
            "study.json",
            self._read("study.json")
            | {
                "demo": str(self.demo),
                "config": asdict(self.config),
                "objectives": self.objectives,
                "judges": {
                    judged: describe(specs)
                    for judged, specs in judge_sets(self.objectives, self.config.llm_judge).items()
                },
                "policies": self.policies,
                "best_fit": best,
                "candidates": [{"name": c.name, "kind": c.kind, "weights": weights[c.name]} for c in candidates],
            },
        )

    def _row(self, name: str) -> dict:
        return next(r for r in study_rows(self.out)[1] if r["name"] == name)

    def _done(self, candidate: Candidate) -> bool:
        return finished(self.out / "answers", candidate.name)

    def _prompts(self) -> list[list[dict]]:
        lines = (self.demo / "eval_prompts.jsonl").read_text().splitlines()[: self.config.eval_prompts]
        return [json.loads(line)["messages"] for line in lines]

    def _answer(self, url: str, candidate: Candidate) -> None:
        from scorers import get_scorer

        prompts = self._prompts()
        config = self.config
        judges = {
            judged: {objective: get_scorer(spec) for objective, spec in specs.items()}
            for judged, specs in judge_sets(self.objectives, config.llm_judge).items()
        }
        print(f"  answers of {candidate.name} ({candidate.request()})", flush=True)
        sampling = {"seed": config.seed, "temperature": config.temperature, "max_tokens": config.max_tokens}
        references = None
        if candidate.kind != "reference":  # the reference answers first (study.run._candidates)
            references = [row["response"] for row in read_answers(self.out / "answers", "ref")[1]]
        folder = self.out / "answers"
        answer_candidate(url, candidate, prompts, judges, folder, sampling, config.concurrency, references)

    def _fit_batch(self, name: str) -> tuple[list[dict], dict]:
        """The items and options of fit `name` (study.candidates.FITS)."""
        config, (items, extra) = self.config, FITS[name]
        if items == "pairs":
            lines = (self.demo / self.manifest["prompts"]["pairs_fit"]).read_text().splitlines()
            return [json.loads(line) for line in lines[: config.fit_pairs]], {"seed": config.seed} | extra
        lines = (self.demo / "fit_prompts.jsonl").read_text().splitlines()
        if items == "judged":  # sampled as the study answers: it fits what the study measures
            answers = {"max_tokens": config.max_tokens, "temperature": config.temperature}
            options = config.judged | answers | {"seed": config.seed} | extra
            return [json.loads(line) for line in lines[: config.judged_prompts]], options
        options = config.fit | {"seed": config.seed} | extra
        if options.get("scorers") == "manifest":
            options["scorers"] = self.objectives
        return [json.loads(line) for line in lines[: config.fit_prompts]], options

    def _fits(self, url: str) -> dict:
        fits = self._read("fits.json")
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            return self._fit_each(JobClient(http, "fit"), fits)

    def _fit_each(self, jobs: JobClient, fits: dict) -> dict:
        for name in FITS:
            if name in fits:
                continue
            items, options = self._fit_batch(name)
            print(f"  fit {name} on {len(items)} items: {options}", flush=True)
            before = self.server.cpu_seconds()
            with Timer() as timer:
                status = jobs.run({"items": items, "options": options}, interval=2)
            cpu = self.server.cpu_seconds() - before
            fits[name] = {"weight_set": status["result_weight_set"], "weights": status["weights"], "options": options}
            self._write("fits.json", fits)
            self._add_cost(f"fit:{name}", {"wall_s": round(timer.wall, 1), "cpu_s": round(cpu, 1)})
        return fits

    def _soup(self, name: str, weights: dict[str, float]) -> None:
        """A soup's cost: merging the policies' adapters with its weights (mixer.soups), timed.
        The server serves the same soup from the adapters' factors without merging."""
        if f"soup:{name}" in self._read("costs.json"):
            return
        from mixer.manifest import TOKENIZER_FILES
        from mixer.soups import build_soup

        adapters = {p["name"]: self.demo / p["adapter"] for p in self.manifest["policies"]}
        with Timer() as timer:
            build_soup(name, weights, {}, adapters, self.demo / "ref", self.out / "soups", TOKENIZER_FILES)
        self._add_cost(f"soup:{name}", timer.seconds())

    def _server(self, with_best_soup: bool) -> MpoServer:
        manifest = self._study_manifest(with_best_soup)
        log = self.out / "server.log"
        print(f"  serving {manifest} (log: {log})", flush=True)
        self.server = MpoServer(manifest, self.out / "server", log, env={"MPO_ADMIN_TOKEN": self.token})
        return self.server

    def _study_manifest(self, with_best_soup: bool) -> Path:
        manifest = dict(self.manifest)
        manifest["reference"] = manifest["reference"] | {"path": str(self.demo / manifest["reference"]["path"])}
        manifest["policies"] = [p | {"adapter": str(self.demo / p["adapter"])} for p in manifest["policies"]]
        manifest["prompts"] = {k: str(self.demo / v) for k, v in manifest.get("prompts", {}).items()}
        baselines = [{"name": k, "adapter": str(self.out / "baselines" / k)} for k in KINDS]
        baselines.append({"name": "soup_uniform", "soup": uniform(self.policies)})
        if with_best_soup:
            meta = self._read("study.json")
            baselines.append({"name": "soup_best", "soup": self._read("fits.json")[meta["best_fit"]]["weights"]})
        manifest["baselines"] = baselines
        path = self.out / "manifest.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        return path


def run(args: argparse.Namespace, demo_folder: Path) -> int:
    config = smoke_config() if args.smoke else StudyConfig()
    overrides = {k: getattr(args, k) for k in ("eval_prompts", "seed", "llm_judge") if getattr(args, k) is not None}
    config = replace(config, **overrides)
    began = time.perf_counter()
    try:
        print(Study(demo_folder, args.out, config).run())
    except StudyMismatch as err:
        raise SystemExit(f"mpo-serve study: {err}") from None
    print(f"study done in {time.perf_counter() - began:.0f}s: {args.out / 'table.md'}, {args.out / 'study.png'}")
    return 0
