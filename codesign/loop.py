"""The joint search loop: propose networks -> find their best hardware (exact pruning) -> train -> score.

One run explores one choice vector per proposal: the concatenation of every task's architecture
choices. For each new vector it finds the best heterogeneous hardware by enumeration
(``coexplore.codesign.hardware.best_hardware``); a tuple for which no hardware meets the spec is
*pruned* and never trained (NASAIC's early pruning, made exact). Feasible tuples are proxy-trained
(``coexplore.models.train``, cached on disk) and scored by the task-weighted accuracy/IoU.

Runs that last: every evaluated candidate is appended to ``DIR/log.jsonl`` as it finishes. A run is
resumed by *replay*: a new optimizer with the same seed is asked again and told the logged outcomes
(optimizers are deterministic given their seed and what they were told), so at most the candidates in
flight are lost and a resumed run ends at the same best design as an uninterrupted one.

The budget counts trainings (unique feasible candidates), as NAS benchmarks count queries; pruned
and repeated proposals cost no budget. ``max_proposals`` ends a run whose spec prunes nearly everything.

Worker loss: a candidate whose worker process died on every attempt (``coexplore.codesign.executors``
retries it twice) is logged with status ``failed`` and its ``reason``. It costs no budget, and the
optimizer is told it as infeasible (the penalty, violation 1), so a replay of the log (``--resume``)
tells the optimizer exactly what the first run told it.

Modes, for NASAIC's baselines (``coexplore.codesign.baselines``):
* ``joint``: the co-exploration above.
* ``nas-only``: accuracy-only NAS, no hardware in the loop (every proposal is trained).
* ``fixed-hardware``: the hardware is fixed first; each proposal is scheduled on it and pruned when
  the spec fails there (hardware-aware NAS on a given ASIC).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from coexplore.codesign.hardware import HardwareSpace, best_hardware, evaluate_on_system
from coexplore.codesign.problem import Spec
from coexplore.codesign.search import Outcome, make_optimizer
from coexplore.dataflows.system import System, parse_system, system_to_dict
from coexplore.models.ir import CoexploreError

LOG_NAME = "log.jsonl"
RUN_NAME = "run.json"


class Mode(str, Enum):
    JOINT = "joint"
    NAS_ONLY = "nas-only"
    FIXED = "fixed-hardware"


@dataclass(frozen=True, slots=True)
class TaskSetup:
    """One task of the search: its data, the space its network comes from and its accuracy weight."""

    task: str
    space: str
    weight: float = 1.0
    data_dir: str | None = None


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a run's result (the executor and worker count do not)."""

    tasks: tuple[TaskSetup, ...]
    spec: Spec
    hardware: HardwareSpace
    optimizer: str = "evolution"
    budget: int = 20
    seed: int = 0
    batch_size: int = 4
    mode: Mode = Mode.JOINT
    fixed_system: System | None = None
    max_proposals: int | None = None  # default 20 x budget
    recipe_epochs: tuple[tuple[str, int], ...] = ()  # per-task override of the default recipe's epochs
    cache_dir: str | None = None  # training cache (default: coexplore.models.train.default_cache_dir())

    def __post_init__(self) -> None:
        if not self.tasks:
            raise CoexploreError("no tasks given (expected e.g. --tasks digits,segmentation)")
        names = [t.task for t in self.tasks]
        if len(set(names)) != len(names):
            raise CoexploreError(f"--tasks {','.join(names)}: each task may appear once")
        if not isinstance(self.budget, int) or self.budget < 1:
            raise CoexploreError(f"--budget {self.budget!r}: expected a positive number of trainings")
        if self.batch_size < 1:
            raise CoexploreError(f"batch size {self.batch_size!r}: expected a positive integer")
        if any(t.weight < 0 for t in self.tasks) or sum(t.weight for t in self.tasks) <= 0:
            raise CoexploreError(f"task weights {[t.weight for t in self.tasks]}: expected non-negative, not all 0")
        if self.mode is Mode.FIXED and self.fixed_system is None:
            raise CoexploreError("mode fixed-hardware needs a fixed system")

    @property
    def proposal_limit(self) -> int:
        return self.max_proposals if self.max_proposals is not None else 20 * self.budget

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``run.json`` (a resumed run must match it, budget aside)."""
        return {
            "tasks": [asdict(t) for t in self.tasks],
            "spec": self.spec.to_text(),
            "hardware": _jsonable(asdict(self.hardware)),
            "optimizer": self.optimizer,
            "budget": self.budget,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "mode": self.mode.value,
            "fixed_system": system_to_dict(self.fixed_system) if self.fixed_system is not None else None,
            "max_proposals": self.proposal_limit,
            "recipe_epochs": [list(x) for x in self.recipe_epochs],
        }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Enum):
        return obj.value
    return obj


# ---- the spaces of a configuration -------------------------------------------------------------
def _spaces(config: SearchConfig) -> list[Any]:
    from coexplore.models.spaces import get_space

    return [get_space(t.space) for t in config.tasks]


def cardinalities(config: SearchConfig) -> tuple[int, ...]:
    """The joint choice vector's option counts: every task's space, in task order."""
    return tuple(c for space in _spaces(config) for c in space.cardinalities())


def split_vector(config: SearchConfig, vector: Sequence[int]) -> list[tuple[int, ...]]:
    """Per task, its part of the joint vector."""
    out, i = [], 0
    for space in _spaces(config):
        n = len(space.cardinalities())
        out.append(tuple(int(v) for v in vector[i : i + n]))
        i += n
    if i != len(vector):
        raise CoexploreError(f"choice vector of length {len(vector)}: expected {i} entries")
    return out


def networks_of(config: SearchConfig, vector: Sequence[int]) -> list[Any]:
    """The layer-IR networks of a joint vector, one per task (named after the task)."""
    from coexplore.models.data import task_info

    nets = []
    for setup, space, part in zip(config.tasks, _spaces(config), split_vector(config, vector)):
        info = task_info(setup.task, setup.data_dir)
        net = space.network(part, info.input_shape, info.num_outputs)
        nets.append(replace(net, name=setup.task))
    return nets


# ---- one candidate (a pure function: where it runs changes nothing) -----------------------------
def _hardware_record(hw: Any, mode: Mode) -> dict[str, Any]:
    problem = hw.problem
    assignment = [
        {
            "unit": problem.units[u].name,
            "task": problem.task_names[problem.units[u].task],
            "first": problem.units[u].first,
            "last": problem.units[u].last,
            "sub_accelerator": problem.acc_names[a],
        }
        for u, a in enumerate(hw.assignment)
    ]
    return {
        "spec_met": bool(hw.feasible),
        "violation": float(hw.check.violation),
        "margin": float(hw.check.margin),
        "ratios": {k: float(v) for k, v in hw.check.ratios},
        "proven_infeasible": bool(hw.proven_infeasible),
        "reason": hw.reason,
        "latency_cycles": float(hw.makespan_cycles),
        "task_latency_cycles": {k: float(v) for k, v in hw.task_latency_cycles.items()},
        "energy_uj": float(hw.energy_pj) / 1e6,
        "area_mm2": float(hw.area_um2) / 1e6,
        "system": system_to_dict(hw.system),
        "assignment": assignment,
        "hardware_mode": mode.value,
    }


CRASH_ENV = "COEXPLORE_TEST_CRASH_DIR"  # test-only: see _maybe_crash


def _maybe_crash(vector: Sequence[int]) -> None:
    """Test-only fault injection: when ``$COEXPLORE_TEST_CRASH_DIR`` is set, a file there named
    ``V.N`` (``V`` the vector joined by ``-``, or ``any``; ``N`` any tag) is one crash token: the worker
    that removes it exits at once, as a killed worker would. Removal is atomic, so each token kills
    exactly one attempt, across processes."""
    folder = os.environ.get(CRASH_ENV)
    if not folder:
        return
    key = "-".join(str(int(v)) for v in vector)
    for name in sorted(os.listdir(folder)):
        if name.split(".", 1)[0] in (key, "any"):
            try:
                os.unlink(os.path.join(folder, name))
            except FileNotFoundError:
                continue  # another worker took this token
            os._exit(70)


def _archs(config: SearchConfig, vector: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {"task": s.task, "space": s.space, "choice": list(p), "describe": sp.describe(p)}
        for s, sp, p in zip(config.tasks, _spaces(config), split_vector(config, vector))
    ]


def failed_record(config: SearchConfig, vector: Sequence[int], reason: str, attempts: int) -> dict[str, Any]:
    """The log record of a candidate that could not be evaluated (its worker died on every attempt)."""
    return {
        "vector": [int(v) for v in vector],
        "archs": _archs(config, vector),
        "status": "failed",
        "reason": reason,
        "attempts": attempts,
        "seconds": 0.0,
    }


def hardware_stage(job: tuple[SearchConfig, tuple[int, ...]]) -> dict[str, Any]:
    """A candidate's first stage: its hardware search. The record so far; status ``pruned`` when no
    hardware meets the spec (then it is final and never trained)."""
    config, vector = job
    _maybe_crash(vector)
    t0 = time.perf_counter()
    record: dict[str, Any] = {"vector": list(vector), "archs": _archs(config, vector)}
    names = [t.task for t in config.tasks]
    hw = None
    if config.mode is not Mode.NAS_ONLY:
        nets = networks_of(config, vector)
        if config.mode is Mode.JOINT:
            hw = best_hardware(nets, config.spec, config.hardware, task_names=names, seed=config.seed)
        else:
            assert config.fixed_system is not None
            hw = evaluate_on_system(nets, config.fixed_system, config.spec, task_names=names, seed=config.seed)
        record.update(_hardware_record(hw, config.mode))
    record["hardware_seconds"] = record["seconds"] = time.perf_counter() - t0
    if hw is not None and not hw.feasible:
        record["status"] = "pruned"
    return record


def train_stage(job: tuple[SearchConfig, tuple[int, ...], int]) -> dict[str, Any]:
    """A candidate's second stage, one item per task (so the tasks of one candidate train in parallel):
    the proxy training of task ``t``'s network. Returns its metric, whether it came from the cache, its
    seconds and its device."""
    from coexplore.models.train import default_recipe, train_candidate

    config, vector, t = job
    setup, part = config.tasks[t], split_vector(config, vector)[t]
    recipe = default_recipe(setup.task)
    epochs = dict(config.recipe_epochs)
    if setup.task in epochs:
        recipe = replace(recipe, epochs=epochs[setup.task])
    res = train_candidate(setup.space, part, setup.task, recipe, data_dir=setup.data_dir, cache_dir=config.cache_dir)
    return {
        "metric": float(res.metric),
        "cached": bool(res.cached),
        "seconds": float(res.seconds),
        "device": res.device,
    }


def trained_record(config: SearchConfig, record: dict[str, Any], trainings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The log record of a candidate whose every task trained (``trainings`` in task order)."""
    accuracy = {setup.task: tr["metric"] for setup, tr in zip(config.tasks, trainings)}
    train_s = sum(0.0 if tr["cached"] else tr["seconds"] for tr in trainings)  # a cached result cost nothing here
    device = min((tr["cached"], tr["device"]) for tr in trainings)[1]  # where this run trained, else the cache's
    total_w = sum(t.weight for t in config.tasks)
    return dict(
        record,
        status="trained",
        accuracy=accuracy,
        score=sum(t.weight * accuracy[t.task] for t in config.tasks) / total_w,
        train_seconds=train_s,
        cached=all(tr["cached"] for tr in trainings),
        device=device,
        seconds=record["hardware_seconds"] + train_s,
    )


def evaluate_candidate(job: tuple[SearchConfig, tuple[int, ...]]) -> dict[str, Any]:
    """Both stages in this process, one task after the other: the candidate's log record."""
    config, vector = job
    record = hardware_stage(job)
    if record.get("status") == "pruned":
        return record
    return trained_record(config, record, [train_stage((config, vector, t)) for t in range(len(config.tasks))])


def evaluate_stage(job: tuple[Any, ...]) -> dict[str, Any]:
    """One executor item: ``("hw", config, vector)`` a candidate's hardware search, or
    ``("train", config, vector, task_index, position)`` one task's training."""
    if job[0] == "hw":
        return hardware_stage((job[1], job[2]))
    return train_stage((job[1], job[2], job[3]))


def _is_training(job: tuple[Any, ...]) -> bool:
    return bool(job[0] == "train")


def _evaluate_batch(
    executor: Any, config: SearchConfig, vectors: Sequence[tuple[int, ...]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Evaluate ``vectors`` on ``executor``: every hardware search at once, and a candidate's
    trainings (one item per task) added as soon as its own hardware search ends, so workers never wait
    for the batch's slowest search; yields ``(position, record)`` as each candidate is complete. An
    item whose worker died on every attempt makes its candidate ``failed``."""
    from coexplore.codesign.executors import Failed

    n_tasks = len(config.tasks)
    items: list[tuple[Any, ...]] = [("hw", config, v) for v in vectors]
    first: dict[int, dict[str, Any]] = {}
    trainings: dict[int, dict[int, dict[str, Any]]] = {}
    for i, res in executor.map_unordered(evaluate_stage, items, gpu=_is_training):
        job = items[i]
        if job[0] == "hw":
            if isinstance(res, Failed):
                yield i, failed_record(config, vectors[i], res.reason, res.attempts)
            elif res.get("status") == "pruned":
                yield i, res
            else:
                first[i], trainings[i] = res, {}
                items.extend(("train", config, vectors[i], t, i) for t in range(n_tasks))
            continue
        t, j = job[3], job[4]
        if j not in trainings:
            continue  # this candidate already failed on another task
        if isinstance(res, Failed):
            del trainings[j]
            yield j, failed_record(config, vectors[j], res.reason, res.attempts)
            continue
        trainings[j][t] = res
        if len(trainings[j]) == n_tasks:
            done = trainings.pop(j)
            yield j, trained_record(config, first[j], [done[k] for k in range(n_tasks)])


def outcome_of(record: dict[str, Any], config: SearchConfig) -> Outcome:
    """What the optimizer is told about a logged candidate."""
    objectives = tuple(float(v) for _, v in sorted(record.get("ratios", {}).items()))
    if record["status"] == "trained":
        return Outcome(feasible=True, score=float(record["score"]), objectives=objectives)
    if record["status"] == "failed":  # nothing is known: the penalty, the same on every replay
        return Outcome(feasible=False, score=None, objectives=(), violation=1.0)
    return Outcome(feasible=False, score=None, objectives=objectives, violation=float(record.get("violation", 1.0)))


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class RunState:
    """Counters and records of a run so far (in proposal order: ``records[i]`` has ``index == i``)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    proposals: int = 0
    repeats: int = 0
    seconds: float = 0.0

    @property
    def trained(self) -> int:
        return sum(r["status"] == "trained" for r in self.records)

    @property
    def pruned(self) -> int:
        return sum(r["status"] == "pruned" for r in self.records)

    @property
    def failed(self) -> int:
        return sum(r["status"] == "failed" for r in self.records)


def best_record(records: Sequence[dict[str, Any]], mode: Mode | str) -> dict[str, Any] | None:
    """The highest-scoring trained record (that meets the spec, unless the run ignores hardware);
    ties go to the earlier proposal."""
    mode = Mode(mode)
    ok = [r for r in records if r["status"] == "trained" and (mode is Mode.NAS_ONLY or r.get("spec_met", False))]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["score"], -r["index"]))


def _read_log(path: Path) -> dict[int, dict[str, Any]]:
    """Logged records by proposal index; a torn last line (the run was killed mid-write) is dropped."""
    out: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[int(rec["index"])] = rec
    return out


def _check_resume(out: Path, config: SearchConfig) -> None:
    run_path = out / RUN_NAME
    if not run_path.exists():
        raise CoexploreError(f"--resume: {run_path} not found (nothing to resume in {out})")
    old = json.loads(run_path.read_text())
    new = config.to_dict()
    for key in new:
        if key in ("budget", "max_proposals"):
            continue
        if old.get(key) != new[key]:
            raise CoexploreError(
                f"--resume: {key} differs from the logged run in {out} "
                f"({json.dumps(old.get(key))[:80]} vs {json.dumps(new[key])[:80]})"
            )


ProgressFn = Callable[[RunState, dict[str, Any] | None], None]


def run_search(
    config: SearchConfig,
    out: str | Path,
    *,
    resume: bool = False,
    executor: Any = None,
    progress: ProgressFn | None = None,
) -> RunState:
    """Run (or resume) a search into ``out``; see the module docstring. Returns the final state."""
    from coexplore.codesign.executors import SerialExecutor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG_NAME
    if resume:
        _check_resume(out, config)
    elif log_path.exists() and log_path.stat().st_size > 0:
        raise CoexploreError(f"{log_path} exists: pass --resume to continue that run, or choose another --out")
    (out / RUN_NAME).write_text(json.dumps(config.to_dict(), indent=2))
    logged = _read_log(log_path) if resume else {}
    if resume and logged:  # rewrite the log without torn lines, in proposal order
        log_path.write_text("".join(json.dumps(logged[i]) + "\n" for i in sorted(logged)))
    cards = cardinalities(config)
    optimizer = make_optimizer(config.optimizer, cards, config.seed)
    executor = executor or SerialExecutor()
    state = RunState()
    memo: dict[tuple[int, ...], dict[str, Any]] = {}
    t0 = time.perf_counter()
    with log_path.open("a") as log:
        while state.trained < config.budget and state.proposals < config.proposal_limit:
            want = min(config.batch_size, config.budget - state.trained)
            vectors = [tuple(int(x) for x in v) for v in optimizer.ask(want)]
            if not vectors:
                break
            state.proposals += len(vectors)
            results: list[dict[str, Any] | None] = [None] * len(vectors)
            todo: list[tuple[int, int]] = []  # (position in batch, proposal index)
            next_index = len(state.records)
            for k, vec in enumerate(vectors):
                if vec in memo:
                    results[k] = memo[vec]
                    state.repeats += 1
                    continue
                index = next_index
                next_index += 1
                rec = logged.get(index)
                if rec is not None:
                    if tuple(rec["vector"]) != vec:
                        raise CoexploreError(
                            f"--resume: {log_path} entry {index} is {rec['vector']}, but this run "
                            f"proposes {list(vec)} there (a different seed or configuration)"
                        )
                    results[k] = memo[vec] = rec
                    continue
                memo[vec] = {}  # placeholder: a repeat inside this batch waits for the first
                todo.append((k, index))
            for j, rec in _evaluate_batch(executor, config, [vectors[k] for k, _ in todo]):
                k, index = todo[j]
                rec = dict(rec, index=index)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                results[k] = rec
                memo[vectors[k]] = rec
                if progress:
                    state.seconds = time.perf_counter() - t0
                    progress(state, rec)
            for k, vec in enumerate(vectors):  # repeats inside the batch point at the finished record
                if not results[k]:
                    results[k] = memo[vec]
            new = sorted((r for r in results if r and r["index"] >= len(state.records)), key=lambda r: r["index"])
            seen: set[int] = set()
            for r in new:
                if r["index"] not in seen:
                    state.records.append(r)
                    seen.add(r["index"])
            optimizer.tell(vectors, [outcome_of(r, config) for r in results])  # type: ignore[arg-type]
            state.seconds = time.perf_counter() - t0
            if progress:
                progress(state, None)
    return state


def load_records(out: str | Path) -> list[dict[str, Any]]:
    """A run's logged records in proposal order."""
    logged = _read_log(Path(out) / LOG_NAME)
    return [logged[i] for i in sorted(logged)]


def system_of(record: dict[str, Any]) -> System:
    """The ``System`` a logged record was evaluated on."""
    return parse_system(record["system"], source="log record")
