"""The Python API re-exported at top level: gansim.load_generator, gansim.simulate_showers, gansim.evaluate."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gansim
from gansim.config import load_config
from gansim.data.schema import write_calo


def test_import_gansim_is_light() -> None:
    heavy = "('torch', 'ray', 'optuna', 'h5py', 'numpy')"
    code = f"import sys, gansim; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
    assert {"load_generator", "simulate_showers", "evaluate"} <= set(dir(gansim)) and gansim.__all__
    with pytest.raises(AttributeError):
        gansim.no_such_thing  # noqa: B018


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory) -> Path:
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    cfg = load_config("configs/debug.yaml")
    return save_generator(tmp_path_factory.mktemp("gen") / "generator.pt", build_generator(cfg), cfg)


def test_simulate_generate_evaluate(generator_file: Path, tmp_path: Path) -> None:
    ref = gansim.simulate_showers("eplus", 150, seed=3)
    assert ref["layer_0"].shape == (150, 3, 96) and ref["energy"].shape == (150, 1)
    np.testing.assert_array_equal(gansim.simulate_showers("eplus", 150, seed=3)["layer_1"], ref["layer_1"])
    g = gansim.load_generator(generator_file)
    assert isinstance(g, gansim.GeneratorArtifact)
    showers = g.generate(np.array([10.0, 50.0], np.float32), seed=1)
    assert showers["layer_2"].shape == (2, 12, 6) and (showers["layer_2"] >= 0).all()
    np.testing.assert_array_equal(g.generate(np.array([10.0, 50.0], np.float32), seed=1)["layer_2"],
                                  showers["layer_2"])

    report = gansim.evaluate(ref, generator=generator_file, out=tmp_path / "a", classifier=False, seed=2)
    assert math.isfinite(report["fidelity_score"]) and report["generated"]["n_events"] == 150
    assert (tmp_path / "a" / "report.json").is_file() and (tmp_path / "a" / "index.html").is_file()
    with pytest.raises(gansim.errors.GansimError, match="either generated events or a generator"):
        gansim.evaluate(ref, out=tmp_path / "c")
    with pytest.raises(Exception, match="unknown key eval.colour"):
        gansim.evaluate(ref, ref, out=tmp_path / "c", colour=1)


@pytest.mark.slow
def test_evaluate_a_file_against_arrays(tmp_path: Path) -> None:
    ref = gansim.simulate_showers("eplus", 150, seed=3)
    path = write_calo(tmp_path / "ref.h5", ref["energy"], ref, ref["overflow"], attrs={"particle": "eplus"})
    same = gansim.evaluate(path, gansim.simulate_showers("eplus", 150, seed=4), out=tmp_path / "b", classifier=False)
    pion = gansim.evaluate(path, gansim.simulate_showers("piplus", 150, seed=4), out=tmp_path / "p", classifier=False)
    assert 0.0 <= same["fidelity_score"] < pion["fidelity_score"]  # e+ vs e+ beats e+ vs pi+
    assert same["reference"]["particle"] == "eplus" and same["generated"]["source"] == "<generated arrays>"
