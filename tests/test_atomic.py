"""Files committed through gansim.atomic get the mode a plain open() gives under the user's umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gansim.atomic import atomic_path
from gansim.config import load_config
from gansim.data.schema import write_calo
from gansim.metrics.report import write_report
from tests.conftest import make_calo_arrays


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plain_open_mode(path: Path) -> int:
    """What `open(path, "w")` gives a new file under the current umask: the reference."""
    with open(path, "w"):
        pass
    return mode(path)


def test_outputs_get_the_plain_open_mode(umask: int, tmp_path: Path) -> None:
    want = plain_open_mode(tmp_path / "reference.txt")
    assert want == 0o666 & ~umask  # 0644 under 022, 0640 under 027: group-readable, as colleagues need
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    arrays = make_calo_arrays(8)
    write_calo(tmp_path / "showers.h5", arrays["energy"], arrays, arrays["overflow"])
    load_config("configs/debug.yaml").save(tmp_path / "config.yaml")
    write_report({"kind": "calo", "reference": {"source": "r", "n_events": 1}, "generated": {"source": "g",
                  "n_events": 1}, "settings": {"seed": 0}, "versions": {"gansim": "0"}}, tmp_path / "report")
    written = [tmp_path / "a.txt", tmp_path / "showers.h5", tmp_path / "config.yaml",
               *(tmp_path / "report" / n for n in ("report.json", "index.md", "index.html"))]
    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(want) for p in written}
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "report").glob(".*.tmp"))


def test_generator_artefact_mode(tmp_path: Path) -> None:
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    old = os.umask(0o027)
    try:
        cfg = load_config("configs/debug.yaml")
        path = save_generator(tmp_path / "generator.pt", build_generator(cfg), cfg)
        assert mode(path) == 0o640
    finally:
        os.umask(old)


def test_replacing_and_failing_keep_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old" and not list(tmp_path.glob(".*.tmp"))
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
