"""Where candidates are evaluated changes nothing: serial, process-pool and Ray runs of a seed log the same
candidates with the same costs and accuracies and end at the same best design, also when workers die.

Worker deaths are injected with ``COEXPLORE_TEST_CRASH_DIR`` (``coexplore.codesign.loop._maybe_crash``):
each file ``V.N`` there kills the one worker attempt that takes it, ``any.N`` whichever comes first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coexplore.cli import cli
from coexplore.cli_search import build_config
from coexplore.codesign.executors import ProcessExecutor, SerialExecutor
from coexplore.codesign.loop import CRASH_ENV, Mode, SearchConfig, best_record, load_records, outcome_of, run_search

LOOSE = "latency=1e9,energy=1e9uJ,area=1000mm2"
BUDGET, SEED = 4, 3
# The configuration of test_search_cli's quick runs: digits only, one epoch, 1-2 small sub-accelerators.
CLI_FAST = [
    "--tasks",
    "digits",
    "--epochs",
    "digits=1",
    "--pe-budget",
    "256",
    "--bw-budget",
    "16",
    "--batch-size",
    "2",
    "--spec",
    LOOSE,
    "--optimizer",
    "evolution",
    "--budget",
    str(BUDGET),
    "--seed",
    str(SEED),
]


def _config(cache: Path, seed: int = SEED) -> SearchConfig:
    config, _ = build_config(
        tasks="digits",
        spec_text=LOOSE,
        optimizer="evolution",
        budget=BUDGET,
        seed=seed,
        pe_budget=256,
        bw_budget=16.0,
        templates_text=None,
        max_accelerators=2,
        batch_size=2,
        max_proposals=None,
        weights=None,
        data=(),
        epochs="digits=1",
        cache_dir=str(cache),
    )
    return config


def _signature(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must not depend on the executor: per proposal index, the candidate, its outcome and costs."""
    return [
        (
            r["index"],
            tuple(r["vector"]),
            r["status"],
            r.get("accuracy"),
            r.get("latency_cycles"),
            r.get("energy_uj"),
            r.get("area_mm2"),
            json.dumps(r.get("system"), sort_keys=True),
        )
        for r in sorted(records, key=lambda r: r["index"])
    ]


def _crash_tokens(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()
    return folder


def _key(vector: list[int]) -> str:
    return "-".join(map(str, vector))


def _search(executor: Any, out: Path, cache: Path, seed: int = SEED) -> list[dict[str, Any]]:
    try:
        run_search(_config(cache, seed), out, executor=executor)
    finally:
        executor.close()
    return load_records(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The serial run, with a cold training cache."""
    tmp = tmp_path_factory.mktemp("serial")
    records = _search(SerialExecutor(), tmp / "run", tmp / "cache")
    assert sum(r["status"] == "trained" for r in records) == BUDGET
    return records


@pytest.mark.heavy
def test_process_pool_logs_what_the_serial_run_logs(tmp_path: Path, reference: list[dict[str, Any]]) -> None:
    records = _search(ProcessExecutor(2), tmp_path / "run", tmp_path / "cache")  # cold cache: trains again
    assert _signature(records) == _signature(reference)
    assert best_record(records, Mode.JOINT) is not None
    assert _signature([best_record(records, Mode.JOINT)]) == _signature([best_record(reference, Mode.JOINT)])
    assert not any(r.get("cached") for r in records if r["status"] == "trained")


@pytest.mark.heavy
def test_dead_workers_are_retried_and_change_nothing(
    tmp_path: Path, reference: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first attempt of whatever comes first, and the first of proposal 2, lose their worker
    crash = _crash_tokens(tmp_path / "crash", "any.0", f"{_key(reference[2]['vector'])}.0")
    monkeypatch.setenv(CRASH_ENV, str(crash))
    records = _search(ProcessExecutor(2), tmp_path / "run", tmp_path / "cache")
    assert not list(crash.iterdir()), "the injected crashes did not happen"
    assert _signature(records) == _signature(reference)


@pytest.mark.heavy
def test_a_candidate_that_always_kills_its_worker_is_logged_failed_and_the_run_goes_on(
    tmp_path: Path, reference: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = reference[1]["vector"]
    crash = _crash_tokens(tmp_path / "crash", *(f"{_key(doomed)}.{n}" for n in range(3)))
    monkeypatch.setenv(CRASH_ENV, str(crash))
    out = tmp_path / "run"
    records = _search(ProcessExecutor(2), out, tmp_path / "cache")
    assert not list(crash.iterdir())
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["vector"] == doomed and failed[0]["index"] == 1
    assert failed[0]["attempts"] == 3 and "died" in failed[0]["reason"]
    assert not failed[0]["archs"][0]["describe"] == ""
    # its neighbour in the pool is not blamed; the budget still buys BUDGET trainings
    assert _signature(records[:1]) == _signature(reference[:1])
    assert sum(r["status"] == "trained" for r in records) == BUDGET
    # the optimizer sees it as infeasible, the same way on every replay
    config = _config(tmp_path / "cache")
    told = outcome_of(failed[0], config)
    assert told == outcome_of(json.loads(json.dumps(failed[0])), config)
    assert not told.feasible and told.violation == 1.0
    # --resume replays the failed record (it is not evaluated again: the crash tokens are gone) and ends alike
    monkeypatch.delenv(CRASH_ENV)
    state = run_search(config, out, resume=True, executor=SerialExecutor())
    assert _signature(state.records) == _signature(records) and state.failed == 1


@pytest.mark.parametrize(
    "args, part",
    [
        (["--executor", "process", "--ray-address", "127.0.0.1:6379"], "--ray-address"),
        (["--executor", "serial", "--gpus-per-candidate", "1"], "--gpus-per-candidate"),
        (["--executor", "ray", "--gpus-per-candidate", "-1"], "-1"),
        (["--executor", "dask"], "dask"),
    ],
)
def test_bad_executor_options_are_one_line_errors(tmp_path: Path, args: list[str], part: str) -> None:
    result = CliRunner().invoke(cli, ["search", *CLI_FAST, "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert part in result.output
    assert not (tmp_path / "o" / "log.jsonl").exists()


def test_ray_executor_without_ray_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(cli, ["search", *CLI_FAST, "--executor", "ray", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'coexplore[cluster]'" in lines[0], result.output


def _cli_cmd(out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coexplore.cli",
        "search",
        *CLI_FAST,
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        *extra,
    ]


def _kill_after_first_training(cmd: list[str], log: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and '"trained"' in log.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _no_orphans(str(log.parent))


def _no_orphans(marker: str, within_s: float = 15.0) -> None:
    """No process whose command line names ``marker`` (the killed run's folder) outlives it: the
    pool's workers end with their parent (Linux /proc; elsewhere nothing to check)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return
    deadline = time.time() + within_s
    while True:
        alive = []
        for entry in proc_dir.iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if marker in cmdline:
                    alive.append(entry.name)
        if not alive or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not alive, f"worker processes {alive} outlived the killed run"


def _killed_then_resumed(tmp_path: Path, reference: list[dict[str, Any]], device: str, *executor: str) -> None:
    """A real ``coexplore search`` killed with SIGKILL mid-run, then ``--resume``: the same candidates
    and the same best design as the serial reference run."""
    env = dict(os.environ, COEXPLORE_CACHE=str(tmp_path / "unused"))
    out, cache = tmp_path / "killed", tmp_path / "cache"
    _kill_after_first_training(_cli_cmd(out, cache, *executor), out / "log.jsonl", env)
    assert len(load_records(out)) < len(reference)
    done = subprocess.run(
        _cli_cmd(out, cache, *executor, "--resume", "--json"), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)  # stdout holds only the JSON: nothing else printed there
    assert _signature(load_records(out)) == _signature(reference)
    best = best_record(reference, Mode.JOINT)
    assert best is not None and summary["best"]["accuracy"] == best["accuracy"]
    assert summary["best"]["latency_cycles"] == best["latency_cycles"]
    assert summary["device"] == device


def _local_device() -> str:
    """Where a worker process of this machine trains: the CUDA device when one is visible."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


@pytest.mark.heavy
def test_process_run_killed_as_a_whole_resumes_to_the_same_result(
    tmp_path: Path, reference: list[dict[str, Any]]
) -> None:
    _killed_then_resumed(tmp_path, reference, _local_device(), "--workers", "2", "--executor", "process")


# ---- Ray ---------------------------------------------------------------------------------------
def _gpus() -> float:
    """GPUs per Ray task: half a GPU when one is visible (the serial reference trains there too; a Ray
    task that asks for none sees none), else 0."""
    return 0.5 if _local_device() != "cpu" else 0.0


def _ray() -> Any:
    return pytest.importorskip("ray", reason="Ray is not installed: pip install 'coexplore[cluster]' to run Ray tests")


@pytest.mark.heavy
def test_ray_run_logs_what_the_serial_run_logs_even_when_a_worker_dies(
    tmp_path: Path, reference: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = _ray()
    from coexplore.codesign.executors import RayExecutor

    crash = _crash_tokens(tmp_path / "crash", "any.0")
    monkeypatch.setenv(CRASH_ENV, str(crash))  # before the cluster starts: its workers inherit it
    executor = RayExecutor(2, gpus_per_candidate=_gpus())
    assert ray.is_initialized() and executor.start_seconds > 0
    records = _search(executor, tmp_path / "run", tmp_path / "cache")
    assert not ray.is_initialized(), "the local cluster was not shut down"
    assert not list(crash.iterdir()), "the injected crash did not happen"
    assert _signature(records) == _signature(reference)


@pytest.mark.slow
def test_ray_candidate_that_always_kills_its_worker_is_logged_failed(
    tmp_path: Path, reference: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _ray()
    from coexplore.codesign.executors import RayExecutor

    doomed = reference[1]["vector"]
    crash = _crash_tokens(tmp_path / "crash", *(f"{_key(doomed)}.{n}" for n in range(3)))
    monkeypatch.setenv(CRASH_ENV, str(crash))
    records = _search(RayExecutor(2, gpus_per_candidate=_gpus()), tmp_path / "run", tmp_path / "cache")
    failed = [r for r in records if r["status"] == "failed"]
    assert [r["vector"] for r in failed] == [doomed] and failed[0]["attempts"] == 3
    assert "Ray worker lost" in failed[0]["reason"]
    assert sum(r["status"] == "trained" for r in records) == BUDGET


@pytest.mark.slow
def test_ray_run_killed_as_a_whole_resumes_to_the_same_result(tmp_path: Path, reference: list[dict[str, Any]]) -> None:
    _ray()
    _killed_then_resumed(
        tmp_path,
        reference,
        _local_device(),
        "--workers",
        "2",
        "--executor",
        "ray",
        "--gpus-per-candidate",
        str(_gpus()),
    )


@pytest.mark.parametrize(
    "address, part", [("127.0.0.1:1", "nothing answers"), ("localhost", "HOST:PORT"), ("host:99999", "HOST:PORT")]
)
def test_bad_ray_address_is_a_quick_one_line_error(tmp_path: Path, address: str, part: str) -> None:
    result = CliRunner().invoke(
        cli, ["search", *CLI_FAST, "--executor", "ray", "--ray-address", address, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and part in lines[0] and address in lines[0], result.output
