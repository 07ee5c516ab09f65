"""Names and paths gansim resolves: run names, shipped configs and pretrained generators, inputs vs outputs."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from gansim.errors import GansimError

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_name(name: str, what: str = "run.name") -> str:
    """A run name is one plain path component: letters, digits, '.', '_', '-', not starting with '.' or '-'."""
    if not isinstance(name, str) or not _RUN_NAME.match(name) or name in (".", ".."):
        raise GansimError(f"{what}: {name!r} is not a valid run name (one path component of letters, digits, "
                          "'.', '_' and '-', starting with a letter or digit)")
    return name


def package_dir(sub: str) -> Path:
    """A data directory shipped inside the gansim package (configs, pretrained)."""
    return Path(str(resources.files("gansim") / sub))


def shipped_config(name: str) -> Path | None:
    """configs/<name>.yaml shipped with gansim ('calogan-eplus', 'tune/calogan', or with .yaml), or None."""
    base = package_dir("configs")
    stem = name[:-5] if name.endswith(".yaml") else name
    stem = stem.removeprefix("configs/")
    candidate = (base / f"{stem}.yaml").resolve()
    if base.resolve() not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def shipped_generator(name: str) -> Path | None:
    """gansim/pretrained/<name>.pt shipped with the package ('eplus', 'gamma', 'piplus', 'jets'), or None."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return None
    path = package_dir("pretrained") / f"{name}.pt"
    return path if path.is_file() else None


def list_shipped_generators() -> list[str]:
    d = package_dir("pretrained")
    return sorted(p.stem for p in d.glob("*.pt")) if d.is_dir() else []


def list_shipped_configs() -> list[str]:
    base = package_dir("configs")
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.yaml"))


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name the same existing file (or the same path when neither exists yet)."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwrite(out: str | Path, *inputs: str | Path, what: str = "--out") -> None:
    """GansimError when the output path is one of the inputs (writing would destroy what is being read)."""
    out_p = Path(out)
    for inp in inputs:
        if inp and (same_file(out_p, inp) or out_p.resolve() == Path(inp).resolve()):
            raise GansimError(f"{what} {out} is also an input ({inp}); writing it would destroy the input - "
                              "choose another output path")
