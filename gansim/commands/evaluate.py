"""`gansim evaluate`: physics validation of generated events against held-out reference events."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gansim.commands.common import add_config_args, config_from_args, count_type
from gansim.errors import GansimError

DESCRIPTION = """\
Compare generated events with reference events and write a report directory:

  report.json          every number: per-feature separation power and Wasserstein-1, response and
                       resolution per energy bin, classifier AUCs, fidelity score, sample sizes, seeds, versions
  index.md, index.html summary with the AUCs and the score first, linking every plot
  *.png                feature histograms with gen/ref ratio panels, average and single showers (log colour),
                       response/resolution vs energy, and with --generator the conditioning figure
                       (jets: mass, pT, tau21, pixel spectrum per class; average images and their difference)

Generated events come from a file (--generated) or from an exported generator (--generator, from `gansim
export`), which is run on the reference's incident energies (calo) or labels (jets), so both samples share
the same conditions. Classifier AUC: 0.5 = indistinguishable from the reference, 1 = fully separable.

examples:
  gansim evaluate --reference ref.h5 --generated gen.h5 --out report/
  gansim evaluate --reference heldout.h5 --generator runs/demo/generator.pt --events 20000 --out report/
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="physics validation: shower shapes, jet observables, classifier AUC, plots",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", "-r", required=True, metavar="H5", help="reference (held-out) CaloGAN or jet file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--generated", "-g", metavar="H5", help="generated events in the same format")
    src.add_argument("--generator", metavar="PT|NAME",
                     help="generator artefact from `gansim export`, or a shipped name (eplus, gamma, piplus, jets)")
    p.add_argument("--events", type=count_type("events"), default=None, metavar="N",
                   help="with --generator: events to generate (sets eval.events; default: as many as the "
                        "reference events used; conditions are the reference's, repeated if N is larger)")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="report directory: new, empty, or an earlier report (never a directory of other files)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for generation, data splits and the classifiers (sets eval.seed; default 0)")
    p.add_argument("--max-events", type=count_type("max-events"), default=None, metavar="N",
                   help="use at most the first N events of each file (sets eval.max_events; default: all)")
    p.add_argument("--no-classifier", action="store_true", help="skip the classifier tests (sets eval.classifier)")
    p.add_argument("--classifier-epochs", type=count_type("classifier-epochs"), default=None, metavar="K",
                   help="most epochs per DNN classifier; early stopping usually ends sooner (eval.classifier_epochs)")
    p.add_argument("--device", default=None, help="device for --generator sampling: cpu, cuda (eval.device)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    add_config_args(p)
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Any:
    extra = []
    for flag, key in (("events", "eval.events"), ("seed", "eval.seed"), ("max_events", "eval.max_events"),
                      ("classifier_epochs", "eval.classifier_epochs"), ("device", "eval.device")):
        if getattr(args, flag) is not None:
            extra.append(f"{key}={getattr(args, flag)}")
    if args.no_classifier:
        extra.append("eval.classifier=false")
    return config_from_args(args, extra).eval


def _generate(args: argparse.Namespace, ref: Any, s: Any, warnings: list[str]) -> tuple[Any, Any, dict]:
    from gansim.api import generated_sample
    from gansim.kinds.base import extrapolates
    from gansim.metrics.io import canonical_particle
    from gansim.models.artifact import load_generator

    artifact = load_generator(args.generator, device=s.device)
    gen, info = generated_sample(artifact, ref, s.events, s.seed)
    gen.source = info["generator"] = str(args.generator)
    cond = artifact.kind.condition(gen.data)
    trained = artifact.condition_range
    # Evaluating an extrapolation is legitimate (produce refuses it without --extrapolate): say it, go on.
    if extrapolates(float(cond.min()), float(cond.max()), trained):
        warnings.append(f"reference conditions {cond.min():g} .. {cond.max():g} reach outside the range the "
                        f"generator was trained on ({trained[0]:g} .. {trained[1]:g}): this evaluates extrapolation")
    gp = artifact.config.data.particle
    if ref.particle and canonical_particle(gp) != ref.particle:
        # The config's particle may be a left default, so this is a warning rather than an error.
        warnings.append(f"generator config says particle {gp}, reference file says {ref.particle}")
        gen.attrs.pop("particle", None)
    return gen, artifact, info


def _check_memory(args: argparse.Namespace, s: Any) -> None:
    """Both samples must fit in memory: say so before reading or generating anything."""
    from gansim.data.schema import validate
    from gansim.metrics.io import check_memory_for

    def used(path: str) -> tuple[str, int]:
        summary = validate(path, scan=False)  # shapes and counts only; load_sample scans the values
        return summary.format, min(summary.n_events, s.max_events) if s.max_events else summary.n_events

    kind, n_ref = used(args.reference)
    n_gen = used(args.generated)[1] if args.generated else (s.events or n_ref)
    check_memory_for(kind, n_ref, n_gen)


def run(args: argparse.Namespace) -> int:
    from gansim.metrics.evaluation import evaluate
    from gansim.metrics.io import check_pair, load_sample
    from gansim.metrics.report import check_report_dir

    s = _settings(args)
    if s.events and not args.generator:
        raise GansimError("--events only applies with --generator")
    check_report_dir(Path(args.out))
    _check_memory(args, s)
    ref = load_sample(args.reference, s.max_events)
    warnings: list[str] = []
    artifact, info = None, {}
    if args.generated:
        gen = load_sample(args.generated, s.max_events)
    else:
        gen, artifact, info = _generate(args, ref, s, warnings)
    check_pair(ref, gen)
    report = evaluate(ref, gen, args.out, s, info, artifact, progress=not args.quiet, warnings=warnings)
    from gansim.progress import finish

    for w in warnings:
        print(f"gansim evaluate: warning: {w}")
    aucs = "".join(f", AUC {k.replace('_level', '')} {v['auc']:.3f}" for k, v in report["classifier"].items())
    finish("evaluate", f"fidelity score {report['fidelity_score']:.4f}{aucs} in {report['wall_seconds']:.0f} s; "
                       f"report {args.out}/index.html (and index.md, report.json, plots)",
           f"gansim produce --generator {args.generator} --events 1e6 --out PRODUCTION_DIR" if args.generator
           else None)
    return 0
