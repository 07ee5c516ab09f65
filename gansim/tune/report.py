"""Study outputs: results table (CSV + Markdown, sorted by score), best.yaml, and Optuna's matplotlib plots."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from gansim.config import Config
from gansim.tune.driver import METRIC
from gansim.tune.space import SearchSpace

FIXED_COLUMNS = ("rank", "trial", "optuna_trial", "status", METRIC, f"best_{METRIC}", "epochs", "wall_s")
STATUS_ORDER = {"complete": 0, "pruned": 1, "failed": 2}


def _float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def error_text(text: str) -> str:
    """The user-facing line of a (Ray-wrapped) trial error: the innermost exception message, shortened."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    pick = next((ln for ln in reversed(lines) if "Error:" in ln or "diverged" in ln), lines[-1] if lines else "")
    # Drop the exception class prefix ("gansim.tune.driver.TrialDiverged: ...", "GansimError: ...").
    return re.sub(r"^[\w.]+(Error|Diverged|Exception): ", "", pick)[-300:]


def _error_of(trial: Any, errors: dict[str, str]) -> str:
    name = Path(str(getattr(trial, "path", "") or "")).name
    if name in errors:
        return errors[name]
    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        return error_text(Path(path).read_text(errors="replace"))
    return ""


def trial_rows(trials: list[Any], space: SearchSpace, max_t: int, optuna_ids: dict[str, int],
               errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per Tune trial: complete trials by final score, then ASHA-pruned ones (scored at fewer epochs, so
    not comparable with full runs), then failed and unfinished ones."""
    rows = []
    for t in trials:
        last = t.last_result or {}
        score = _float(last.get(METRIC))
        best = _float(((getattr(t, "metric_analysis", None) or {}).get(METRIC) or {}).get("min"))
        epochs = int(last.get("epoch", 0) or 0)
        if t.status == "ERROR":
            status = "failed"
        elif t.status == "TERMINATED":
            status = "failed" if score is None else ("complete" if epochs >= max_t else "pruned")
        else:
            status = t.status.lower()
        row: dict[str, Any] = {
            "trial": t.trial_id, "optuna_trial": optuna_ids.get(t.trial_id, ""), "status": status,
            METRIC: score if status != "failed" else None, f"best_{METRIC}": best, "epochs": epochs,
            "wall_s": round(float(last.get("time_total_s", 0.0) or 0.0), 1),
        }
        for name in space.params:
            row[name] = t.config.get(name)
        row["error"] = _error_of(t, errors or {}) if status == "failed" else ""
        rows.append(row)
    # the trial id breaks ties (failed trials have no score): the same table after a resume
    rows.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 3), r[METRIC] is None,
                             r[METRIC] if r[METRIC] is not None else 0.0, str(r["trial"])))
    for i, r in enumerate(rows, 1):
        r["rank"] = i if r[METRIC] is not None else ""
    return rows


def columns(space: SearchSpace) -> list[str]:
    return [*FIXED_COLUMNS, *space.params, "error"]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def write_csv(rows: list[dict[str, Any]], cols: list[str], path: Path) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in cols})
    return path


def write_markdown(rows: list[dict[str, Any]], cols: list[str], path: Path, title: str) -> Path:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("complete", "pruned", "failed")}
    lines = [f"# {title}", "",
             f"{len(rows)} trials: {counts['complete']} complete, {counts['pruned']} pruned (ASHA), "
             f"{counts['failed']} failed. Score: last-epoch {METRIC} on held-out reference events, lower is better; "
             "complete trials first (rank 1 = best.yaml), then trials pruned early by ASHA.", "",
             "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def best_config(base: Config, space: SearchSpace, params: dict[str, Any]) -> Config:
    """The winner as a full config for `gansim train` (own run name/out_dir, the base's resources)."""
    data = space.trial_dict(base.to_dict(), params)
    data["run"]["name"] = f"{base.run.name}-tuned"
    data["run"]["out_dir"] = f"{base.run.out_dir.rstrip('/')}-tuned"
    from gansim.config import config_from_dict

    return config_from_dict(data)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def param_importances(study: Any) -> dict[str, float] | None:
    """Optuna's (fANOVA) importances, or None when fewer than 2 complete trials make it meaningless."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return None
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return None


# file name -> (optuna.visualization.matplotlib function, what the plot needs when it cannot be drawn yet)
STUDY_PLOTS = {
    "history": ("plot_optimization_history", "complete trials"),
    "intermediate": ("plot_intermediate_values", "trials with reported epochs"),
    "importance": ("plot_param_importances", "at least 2 complete trials with varied parameters"),
    "slice": ("plot_slice", "complete trials"),
}


def study_plot(study: Any, name: str, path: Path) -> Path:
    """One of Optuna's own matplotlib plots of the study (what optuna-dashboard shows), or a placeholder naming
    what is missing; written atomically as a PNG."""
    import inspect
    import warnings

    import optuna
    import optuna.visualization.matplotlib as ovm

    from gansim.atomic import atomic_path

    plt = _plt()
    func, needs = STUDY_PLOTS[name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning, "no trials" UserWarnings
            if name == "importance" and param_importances(study) is None:
                raise ValueError(needs)
            plot = getattr(ovm, func)
            named = "target_name" in inspect.signature(plot).parameters  # all but the intermediate-values plot
            axes = plot(study, target_name=f"{METRIC} (lower is better)") if named else plot(study)
        fig = np.ravel(axes)[0].figure
        if not study.trials or not fig.axes or not any(ax.has_data() for ax in fig.axes):
            raise ValueError(needs)
    except (ValueError, RuntimeError, ZeroDivisionError, optuna.exceptions.OptunaError):
        plt.close("all")
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.text(0.5, 0.5, f"{name}: needs {needs}", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    fig.set_size_inches(max(fig.get_size_inches()[0], 7), max(fig.get_size_inches()[1], 4))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close("all")
    return path


def write_reports(out: Path, exp_path: Path, base: Config, space: SearchSpace, study_name: str,
                  storage: Any, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything under out/: results.csv, results.md, best.yaml, plots/*.png (Optuna's own matplotlib plots).
    Returns their paths + rows.
    ``errors`` maps trial directory names to error messages (from Tune's ResultGrid)."""
    import optuna
    from ray.tune import ExperimentAnalysis

    study = optuna.load_study(study_name=study_name, storage=storage)
    optuna_ids = {t.user_attrs["tune_trial_id"]: t.number for t in study.trials if "tune_trial_id" in t.user_attrs}
    trials = ExperimentAnalysis(str(exp_path)).trials
    rows = trial_rows(trials, space, space.epochs(base), optuna_ids, errors)
    cols = columns(space)
    files: dict[str, Any] = {"_rows": rows}
    files["csv"] = write_csv(rows, cols, out / "results.csv")
    files["md"] = write_markdown(rows, cols, out / "results.md", f"gansim tune: study {study_name}")
    best = next((r for r in rows if r["status"] == "complete"), None)
    if best is not None:
        params = {n: best[n] for n in space.params}
        files["best"] = best_config(base, space, params).save(out / "best.yaml")
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for name in STUDY_PLOTS:
        files[name] = study_plot(study, name, plots / f"{name}.png")
    return files
