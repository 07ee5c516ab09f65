"""`gansim evaluate`: physics validation of generated events against held-out reference events."""

from __future__ import annotations

import argparse

from gansim.commands.common import count_type
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
    src.add_argument("--generator", metavar="PT", help="generator artefact from `gansim export` to sample from")
    p.add_argument("--events", type=count_type("events"), default=None, metavar="N",
                   help="with --generator: events to generate (default: as many as the reference events used; "
                        "conditions are the reference's, repeated if N is larger)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="report directory (created)")
    p.add_argument("--seed", type=int, default=0, help="seed for generation, data splits and the classifier (0)")
    p.add_argument("--max-events", type=count_type("max-events"), default=None, metavar="N",
                   help="use at most the first N events of each file (default: all)")
    p.add_argument("--no-classifier", action="store_true", help="skip the two DNN classifier tests (fast)")
    p.add_argument("--classifier-epochs", type=count_type("classifier-epochs"), default=30, metavar="K",
                   help="most epochs per classifier; early stopping on validation usually ends sooner (30)")
    p.add_argument("--device", default="cpu", help="device for --generator sampling (cpu, cuda)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from gansim.metrics.evaluation import Settings, evaluate
    from gansim.metrics.io import Sample, canonical_particle, check_pair, load_sample

    if args.seed < 0:
        raise GansimError(f"--seed must be non-negative, got {args.seed}")
    if args.events is not None and not args.generator:
        raise GansimError("--events only applies with --generator")
    max_events = args.max_events or 0
    ref = load_sample(args.reference, max_events)
    info: dict = {}
    artifact = None
    warnings: list[str] = []
    if args.generated:
        gen = load_sample(args.generated, max_events)
    else:
        from gansim.models.artifact import load_generator

        artifact = load_generator(args.generator, device=args.device)
        if artifact.kind != ref.kind:
            raise GansimError(f"format mismatch: generator {args.generator} makes {artifact.kind} events, "
                              f"reference {args.reference} holds {ref.kind} events")
        n = args.events or ref.n
        cond_key = "energy" if ref.kind == "calo" else "signal"
        cond = np.resize(np.asarray(ref.data[cond_key], np.float32).reshape(-1), n)
        data = artifact.generate(cond, seed=args.seed)
        if ref.kind == "calo":
            data["energy"] = np.asarray(data["energy"]).reshape(-1)
        gp = getattr(artifact.config.data, "particle", None) if ref.kind == "calo" else None
        attrs = {}
        if gp and ref.particle and canonical_particle(gp) != ref.particle:
            # The config's particle may be a left default, so this is a warning rather than an error.
            warnings.append(f"generator config says particle {gp}, reference file says {ref.particle}")
        elif gp:
            attrs["particle"] = gp
        gen = Sample(ref.kind, data, str(args.generator), n, attrs)
        info = {"generator": str(args.generator), "generator_sha256": artifact.sha256, "generation_seed": args.seed,
                "model": artifact.config.model.name}
    check_pair(ref, gen)
    settings = Settings(seed=args.seed, classifier=not args.no_classifier, classifier_epochs=args.classifier_epochs)
    report = evaluate(ref, gen, args.out, settings, info, artifact, progress=not args.quiet, warnings=warnings)
    print(f"report: {args.out}/index.md  (fidelity score {report['fidelity_score']:.4f}"
          + "".join(f", AUC {k.replace('_level', '')} {v['auc']:.3f}" for k, v in report["classifier"].items())
          + f"; {report['wall_seconds']:.0f} s)")
    for w in warnings:
        print(f"warning: {w}")
    return 0
