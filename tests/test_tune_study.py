"""Real `gansim tune` studies on configs/debug.yaml: Ray Tune + OptunaSearch + ASHA over Ray Train trials.

A diverging trial is injected through the space itself: a `data.path` choice whose second file has NaN incident
energies, so the generator's output and every loss of that trial are non-finite, the training loop stops itself
after train.max_nonfinite steps and the trial must be recorded as failed while the study goes on.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
import yaml

from gansim.cli import main
from gansim.config import load_config
from gansim.data.schema import write_calo
from tests.conftest import make_calo_arrays

ray = pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def ray_cluster(ray_local):
    return ray_local


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tune-data")
    arrays = make_calo_arrays(300, seed=3)
    good = d / "good.h5"
    write_calo(good, arrays["energy"], arrays, arrays["overflow"], attrs={"particle": "eplus"})
    # valid by the contract (finite, positive) but the energy-scaled latents overflow float32: every step is non-finite
    arrays["energy"][:] = 3e38
    bad = d / "overflow.h5"
    write_calo(bad, arrays["energy"], arrays, arrays["overflow"], attrs={"particle": "eplus"})
    return good, bad


def write_space(path: Path, good: Path, bad: Path, epochs: int) -> Path:
    space = {
        "tune": {"study_name": "test", "scheduler": "asha", "grace_period": 1, "reduction_factor": 2,
                 "n_startup_trials": 2},
        "fixed": {"train.epochs": epochs, "train.steps_per_epoch": 2, "train.val_events": 60,
                  "train.ema_decay": 0.0, "train.max_nonfinite": 2},
        "params": {
            "data_file": {"key": "data.path", "type": "choice", "values": [str(good), str(bad)]},
            "loss": {"key": "loss.name", "type": "choice", "values": ["non-saturating", "hinge"]},
            "lr_g": {"key": "train.lr_g", "type": "loguniform", "low": 1e-4, "high": 1e-3},
        },
        # The diverging trial first, then a healthy one, so both outcomes are certain.
        "points_to_evaluate": [{"data_file": str(bad), "loss": "hinge", "lr_g": 3e-4},
                               {"data_file": str(good), "loss": "non-saturating", "lr_g": 2e-4}],
    }
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def tune_args(space: Path, out: Path, good: Path, trials: int) -> list[str]:
    return ["tune", "--config", "configs/debug.yaml", "--space", str(space), "--trials", str(trials),
            "--out", str(out), "--data", str(good), "--max-concurrent", "2", "--seed", "7", "-q"]


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as fh:
        return list(csv.DictReader(fh))


def load_study(out: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(out / "optuna-journal.log")))
    return optuna.load_study(study_name="test", storage=storage)


def study_trials(out: Path) -> list:
    return load_study(out).trials


def tune_trial_dirs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "ray" / "study").iterdir() if p.is_dir() and p.name.startswith("trial_driver"))


def check_study(out: Path, good: Path, bad: Path, trials: int) -> list[dict[str, str]]:
    rows = read_rows(out)
    assert len(rows) == trials
    for r in rows:
        if r["data_file"] == str(bad):
            assert r["status"] == "failed" and r["fidelity"] == "" and "diverged" in r["error"], r
        else:
            assert r["status"] in ("complete", "pruned") and float(r["fidelity"]) >= 0.0, r
    complete = [r for r in rows if r["status"] == "complete"]
    assert complete, rows
    assert rows[: len(complete)] == complete  # complete trials first, ranked by score
    scores = [float(r["fidelity"]) for r in complete]
    assert scores == sorted(scores) and rows[0]["rank"] == "1"

    by_tune_id = {t.user_attrs.get("tune_trial_id"): t for t in study_trials(out)}
    assert len(by_tune_id) == trials
    for r in rows:
        t = by_tune_id[r["trial"]]
        want = {"failed": optuna.trial.TrialState.FAIL, "complete": optuna.trial.TrialState.COMPLETE,
                "pruned": optuna.trial.TrialState.PRUNED}[r["status"]]
        assert t.state == want and t.params["data_file"] == r["data_file"]
        if r["status"] == "complete":
            assert t.value == pytest.approx(float(r["fidelity"]))
        if r["status"] in ("complete", "pruned"):
            # every epoch's score is an intermediate value, the last one too (Tune withholds it from the searcher
            # when ASHA stops the trial): what optuna-dashboard draws as learning curves
            assert sorted(t.intermediate_values) == list(range(1, int(r["epochs"]) + 1)), t.intermediate_values
            assert t.intermediate_values[int(r["epochs"])] == pytest.approx(float(r["fidelity"]))
            trial_dir = Path(t.user_attrs["trial_dir"])
            assert trial_dir.parent == out / "ray" / "study" and (trial_dir / "train").is_dir()
            assert list(Path(t.user_attrs["tensorboard"]).glob("events.out.tfevents.*"))
    assert load_study(out).metric_names == ["fidelity"]

    best = load_config(out / "best.yaml")
    assert best.data.path == str(good) and best.loss.name == rows[0]["loss"]
    assert best.train.lr_g == pytest.approx(float(rows[0]["lr_g"]))
    assert best.train.max_nonfinite == 2 and best.train.workers == 1  # fixed + base, not per-trial runtime
    assert best.run.name == "debug-tuned"
    for png in ("history", "intermediate", "importance", "slice"):  # optuna.visualization.matplotlib's plots
        assert (out / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert "| rank |" in (out / "results.md").read_text()
    return rows


def check_resume(out: Path, args: list[str], rows: list[dict[str, str]], trials: int) -> None:
    dirs = tune_trial_dirs(out)
    assert len(dirs) == trials
    assert main(args) == 0
    assert len(study_trials(out)) == trials  # Optuna storage: nothing new
    assert tune_trial_dirs(out) == dirs  # Tune experiment: no trial repeated or added
    from ray.tune import ExperimentAnalysis

    assert len(ExperimentAnalysis(str(out / "ray" / "study")).trials) == trials
    assert [r["trial"] for r in read_rows(out)] == [r["trial"] for r in rows]


def test_small_study_records_divergence_and_resumes(ray_cluster, data_files, tmp_path, capsys) -> None:
    """Always-run variant: 2 one-epoch trials, one diverging; then the same command again."""
    good, bad = data_files
    space = write_space(tmp_path / "space.yaml", good, bad, epochs=1)
    args = tune_args(space, tmp_path / "study", good, 2)
    assert main(args) == 0
    rows = check_study(tmp_path / "study", good, bad, 2)
    assert [r["status"] for r in rows] == ["complete", "failed"]
    assert "1 complete, 0 pruned, 1 failed" in capsys.readouterr().out
    check_resume(tmp_path / "study", args, rows, 2)
    # A different space on the same --out is refused instead of mixing two studies.
    other = write_space(tmp_path / "space2.yaml", good, bad, epochs=2)
    assert main(tune_args(other, tmp_path / "study", good, 2)) == 2
    assert "different search space" in capsys.readouterr().err


@pytest.mark.slow
def test_four_trial_search_best_config_trains(ray_cluster, data_files, tmp_path, capsys) -> None:
    """The issue's check: a real 4-trial search (2 epochs), divergence, table, best.yaml trainable, resume."""
    good, bad = data_files
    space = write_space(tmp_path / "space.yaml", good, bad, epochs=2)
    args = tune_args(space, tmp_path / "study", good, 4)
    t0 = time.perf_counter()
    assert main(args) == 0
    print(f"4-trial search wall time: {time.perf_counter() - t0:.1f} s")
    rows = check_study(tmp_path / "study", good, bad, 4)
    check_resume(tmp_path / "study", args, rows, 4)
    # best.yaml is accepted unchanged by `gansim train` (one short epoch here).
    assert main(["train", "--config", str(tmp_path / "study" / "best.yaml"), "--out", str(tmp_path / "best"),
                 "--epochs", "1"]) == 0
    assert list((tmp_path / "best").glob("debug-tuned/checkpoint_epoch_*/state.pt"))
