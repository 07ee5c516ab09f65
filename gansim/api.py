"""gansim's Python API, re-exported as gansim.load_generator, gansim.simulate_showers and gansim.evaluate: the same
code paths as the commands, for notebooks and analysis scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import GansimError
from gansim.models.artifact import GeneratorArtifact, load_generator
from gansim.sim.calo import simulate_showers

__all__ = ["GeneratorArtifact", "evaluate", "generated_sample", "load_generator", "simulate_showers"]


def _sample(data: str | Path | dict[str, np.ndarray] | Any, max_events: int, what: str) -> Any:
    """A metrics Sample from a file path, a dict of file-unit arrays or a Sample."""
    from gansim.kinds import detect_kind
    from gansim.metrics.io import Sample, load_sample

    if isinstance(data, (str, Path)):
        return load_sample(data, max_events)
    if isinstance(data, Sample):
        return data
    if not isinstance(data, dict):
        raise GansimError(f"{what}: expected a file path or a dict of arrays, got {type(data).__name__}")
    kind = detect_kind(set(data))
    if kind is None:
        raise GansimError(f"{what}: the arrays ({', '.join(sorted(data))}) are neither showers nor jet images")
    arrays = {k: np.asarray(v, np.float32) for k, v in data.items()}
    arrays[kind.cond_key] = arrays[kind.cond_key].reshape(-1)
    n = kind.n_events(arrays) if max_events <= 0 else min(kind.n_events(arrays), max_events)
    return Sample(kind.name, {k: v[:n] for k, v in arrays.items()}, f"<{what} arrays>", n)


def generated_sample(artifact: GeneratorArtifact, reference: Any, events: int = 0, seed: int = 0
                     ) -> tuple[Any, dict[str, Any]]:
    """Events from `artifact` on the reference's conditions (repeated up to `events`, default as many as the
    reference): the sample `gansim evaluate --generator` compares, and what the report records about it."""
    from gansim.metrics.io import Sample

    if artifact.kind.name != reference.kind:
        raise GansimError(f"format mismatch: generator {artifact.path} makes {artifact.kind.name} events, "
                          f"reference {reference.source} holds {reference.kind} events")
    n = events or reference.n
    data = artifact.generate(np.resize(artifact.kind.condition(reference.data), n), seed=seed)
    data[artifact.kind.cond_key] = np.asarray(data[artifact.kind.cond_key]).reshape(-1)
    info = {"generator": str(artifact.path), "generator_sha256": artifact.sha256, "generation_seed": seed,
            "model": artifact.config.model.name}
    return Sample(reference.kind, data, str(artifact.path), n, {"particle": artifact.config.data.particle}), info


def evaluate(reference: str | Path | dict[str, np.ndarray], generated: str | Path | dict[str, np.ndarray] | None = None,
             *, generator: str | Path | GeneratorArtifact | None = None, out: str | Path = "report",
             progress: bool = False, **settings: Any) -> dict[str, Any]:
    """Compare generated events with reference events like `gansim evaluate`; returns report.json's content.

    reference / generated: HDF5 paths or dicts of file-unit arrays (`simulate_showers` output, `generate` output).
    generator: instead of `generated`, an exported generator (path, shipped name or loaded artefact), run on the
    reference's conditions. settings: keys of the config tree's eval section (`gansim config --list`), e.g.
    events=20000, seed=1, classifier=False. Plots, report.json and index.html/md are written to `out`.
    """
    from gansim.config import EvalConfig, build_section
    from gansim.metrics.evaluation import evaluate as run_evaluation
    from gansim.metrics.io import check_pair

    s = build_section(EvalConfig, settings, "eval")
    if (generated is None) == (generator is None):
        raise GansimError("give either generated events or a generator")
    ref = _sample(reference, s.max_events, "reference")
    artifact, info = None, {}
    if generator is not None:
        artifact = generator if isinstance(generator, GeneratorArtifact) else load_generator(generator, s.device)
        gen, info = generated_sample(artifact, ref, s.events, s.seed)
    else:
        gen = _sample(generated, s.max_events, "generated")
    check_pair(ref, gen)
    return run_evaluation(ref, gen, out, s, info, artifact, progress=progress)
