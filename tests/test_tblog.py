"""TensorBoard output as its users expect: shower images, reference-vs-generated histograms per epoch, hparams."""

from __future__ import annotations

from pathlib import Path

from gansim.config import load_config
from gansim.kinds import get_kind
from gansim.train.tblog import TBLogger
from tests.conftest import make_calo_arrays


def test_figures_and_hparams_reach_tensorboard(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ref, gen = make_calo_arrays(300, seed=1), make_calo_arrays(300, seed=2)
    for a in (ref, gen):
        a["energy"] = a["energy"].reshape(-1)
    tb = TBLogger(tmp_path)
    tb.scalars({"fidelity": 0.5, "bad": float("nan")}, 10, "val/")
    tb.showers(ref, gen, get_kind("calo"), 10)
    tb.hparams(load_config("configs/debug.yaml"), {"hparam/fidelity": 0.42})
    tb.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    images = set(acc.Tags()["images"])
    assert {"showers/average", "showers/single", "features/key", "features/worst"} <= images
    assert [e.step for e in acc.Images("features/key")] == [10]
    assert [e.value for e in acc.Scalars("val/fidelity")] == [0.5] and "val/bad" not in acc.Tags()["scalars"]
    hparams = {tag for tag, meta in acc.summary_metadata.items() if meta.plugin_data.plugin_name == "hparams"}
    assert "_hparams_/session_start_info" in hparams  # TensorBoard's HPARAMS tab
