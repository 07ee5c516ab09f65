"""Write an evaluation report: report.json (every number), index.md and index.html (summary linking the plots)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gansim.atomic import atomic_path

TOP_FEATURES = 12
PLOT_TITLES = {
    "average_showers": "Average shower per layer", "single_showers": "Single showers",
    "response_resolution": "Response and resolution vs incident energy",
    "conditioning": "Conditioning: one latent vector, incident energy stepped",
    "jet_features": "Jet observables per class", "jet_images": "Average jet images per class and their difference",
}


def plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None, bytes to str."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


REPORT_KEYS = ("kind", "versions", "reference", "generated")  # what marks report.json as gansim's own


def _is_report(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in REPORT_KEYS)


def check_report_dir(out: Path) -> None:
    """The report goes to a new or empty directory, or replaces an earlier report: a directory of the user's other
    files (an index.md, a report.json of theirs) is refused, since the report would overwrite them."""
    from gansim.errors import GansimError

    if out.exists() and not out.is_dir():
        raise GansimError(f"--out {out} is a file; give a directory for the report")
    if out.is_dir() and any(out.iterdir()) and not _is_report(out / "report.json"):
        raise GansimError(f"--out {out} is a directory of other files (no gansim report.json in it); the report "
                          "would overwrite files there: choose a new or empty directory")


def _atomic_write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _fmt(x: Any, nd: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def headline_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(quantity, value) pairs shown first: score, AUCs with their null band, sample sizes."""
    rows = [("fidelity score (lower is better; ~0.01 for two independent reference samples of 2k)",
             _fmt(report.get("fidelity_score")))]
    for name, res in report.get("classifier", {}).items():
        band = 3 * res["auc_null_sigma"]
        rows.append((f"classifier AUC, {name.replace('_', '-')} (0.5 = indistinguishable; null band ±{band:.3f})",
                     _fmt(res["auc"])))
        rows.append((f"classifier JSD, {name.replace('_', '-')} (0 = indistinguishable, 1 = separable)",
                     _fmt(res["jsd"])))
    if not report.get("classifier"):
        rows.append(("classifier AUC", "not run (--no-classifier)"))
    rows.append(("events: reference / generated", f"{report['reference']['n_events']} / "
                                                   f"{report['generated']['n_events']}"))
    return rows


def _top_features(report: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    feats = report.get("features", {})
    return sorted(feats.items(), key=lambda kv: -(kv[1].get("separation_power") or 0.0))[:TOP_FEATURES]


def markdown(report: dict[str, Any]) -> str:
    kind = report.get("title") or report["kind"]
    g = report["generated"]
    src = g.get("generator") or g["source"]
    lines = [f"# gansim evaluation: {kind}", "",
             f"Reference `{report['reference']['source']}` vs generated `{src}`"
             + (f" (particle {report['reference']['particle']})" if report["reference"].get("particle") else ""), "",
             "| quantity | value |", "|---|---|"]
    lines += [f"| {q} | {v} |" for q, v in headline_rows(report)]
    for w in report.get("warnings", []):
        lines += ["", f"**Warning:** {w}"]
    lines += ["", "## Physics summary", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report.get("physics_summary", {}).items()]
    lines += ["", f"## Features with the largest separation power (of {len(report.get('features', {}))})", "",
              "| feature | separation power | W1 / σ_ref | mean ref | mean gen |", "|---|---|---|---|---|"]
    for name, row in _top_features(report):
        lines.append(f"| {name} | {_fmt(row.get('separation_power'))} | {_fmt(row.get('wasserstein_norm'), 3)} | "
                     f"{_fmt(row.get('mean_ref'), 3)} | {_fmt(row.get('mean_gen'), 3)} |")
    lines += ["", "## Plots", ""]
    for key, fname in report.get("plots", {}).items():
        title = PLOT_TITLES.get(key, key.replace("_", " "))
        lines += [f"### {title}", "", f"[![{title}]({fname})]({fname})", ""]
    lines += ["All numbers: [report.json](report.json). Seed "
              f"{report['settings']['seed']}, gansim {report['versions']['gansim']}, "
              f"wall time {report.get('wall_seconds', 0):.1f} s.", ""]
    return "\n".join(lines)


def html_page(report: dict[str, Any]) -> str:
    e = html.escape
    kind = report.get("title") or report["kind"]
    rows = "".join(f"<tr><td>{e(q)}</td><td><b>{e(v)}</b></td></tr>" for q, v in headline_rows(report))
    summ = "".join(f"<tr><td>{e(k)}</td><td>{e(_fmt(v))}</td></tr>"
                   for k, v in report.get("physics_summary", {}).items())
    feats = "".join(f"<tr><td>{e(n)}</td><td>{e(_fmt(r.get('separation_power')))}</td>"
                    f"<td>{e(_fmt(r.get('wasserstein_norm'), 3))}</td></tr>" for n, r in _top_features(report))
    figs = "".join(f"<h3>{e(PLOT_TITLES.get(k, k.replace('_', ' ')))}</h3>"
                   f"<a href='{e(f)}'><img src='{e(f)}' style='max-width:100%'></a>"
                   for k, f in report.get("plots", {}).items())
    warn = "".join(f"<p><b>Warning:</b> {e(w)}</p>" for w in report.get("warnings", []))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>gansim evaluation</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td{padding:2px 10px}"
            "table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style></head><body>"
            f"<h1>gansim evaluation: {e(kind)}</h1><p>Reference <code>{e(report['reference']['source'])}</code> vs "
            f"generated <code>{e(str(report['generated'].get('generator') or report['generated']['source']))}</code>"
            f"</p><table>{rows}</table>{warn}<h2>Physics summary</h2><table>{summ}</table>"
            f"<h2>Largest separation power</h2><table><tr><th>feature</th><th>S</th><th>W1/σ</th></tr>{feats}</table>"
            f"<h2>Plots</h2>{figs}<p>All numbers: <a href='report.json'>report.json</a></p></body></html>")


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.json, index.md and index.html into out_dir; returns the report.json path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean = plain(report)
    _atomic_write(out / "index.md", markdown(clean))
    _atomic_write(out / "index.html", html_page(clean))
    _atomic_write(out / "report.json", json.dumps(clean, indent=2, allow_nan=False) + "\n")
    return out / "report.json"
