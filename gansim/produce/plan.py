"""The production plan: what to make (events, chunking, seed, conditioning, storage) and who makes which chunk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gansim.errors import GansimError

LAYOUTS = ("shards", "single")
DTYPES = ("float32", "float16")
COMPRESSIONS = ("gzip", "lzf", "zstd", "blosc-lz4", "none")
MAX_CHUNKS = 10**8  # chunk files a plan may hold (manifest, directories and inodes stay sane)

# Fields that change the bytes of the dataset: a resume must match all of them. (The software and hardware
# that change them too - torch version, CPU ISA, GPU model - are the manifest's "environment", see environment.py.)
IDENTITY = ("kind", "particle", "events", "chunk_size", "seed", "condition", "condition_sha256", "batch_size",
            "layout", "dtype", "precision", "compression", "h5_rows", "files_per_dir", "generator_sha256",
            "device_type", "amp", "compile")


@dataclass(frozen=True)
class Plan:
    """Everything that determines the produced bytes; saved in manifest.json."""

    kind: str  # "calo" or "jets"
    particle: str
    events: int
    chunk_size: int
    seed: int
    condition: str  # "uniform:1,100", "log-uniform:a,b", "fixed:E", "file:NAME" (calo), "signal-fraction:F" (jets)
    condition_sha256: str  # of the energy file, when the conditions come from one
    batch_size: int
    layout: str
    dtype: str
    precision: str  # "lossless", "bits:M" or "quantum:Q" (precision.py)
    compression: str
    h5_rows: int  # events per HDF5 chunk inside a file = per checksum block
    files_per_dir: int  # fan-out: chunk files per subdirectory of chunks/
    generator_sha256: str
    device_type: str
    amp: bool
    compile: bool

    def __post_init__(self) -> None:
        if self.events <= 0:
            raise GansimError(f"--events must be positive, got {self.events}")
        if self.chunk_size <= 0:
            raise GansimError(f"--chunk-size must be positive, got {self.chunk_size}")
        if self.batch_size <= 0:
            raise GansimError(f"--batch-size must be positive, got {self.batch_size}")
        if self.h5_rows <= 0 or self.files_per_dir <= 0:
            raise GansimError(f"h5_rows and files_per_dir must be positive, got {self.h5_rows}, {self.files_per_dir}")
        if self.n_chunks > MAX_CHUNKS:
            raise GansimError(f"--events {self.events:,} in chunks of {self.chunk_size:,} events would make "
                              f"{self.n_chunks:,} chunk files, more than {MAX_CHUNKS:,}; raise --chunk-size")
        if self.layout not in LAYOUTS:
            raise GansimError(f"--layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        if self.dtype not in DTYPES:
            raise GansimError(f"--dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.compression not in COMPRESSIONS:
            raise GansimError(f"--compression {self.compression!r} is not one of {', '.join(COMPRESSIONS)}")

    @property
    def n_chunks(self) -> int:
        return -(-self.events // self.chunk_size)

    def chunk_range(self, k: int) -> tuple[int, int]:
        """[start, stop) event indices of chunk k; the last chunk is shorter."""
        if not 0 <= k < self.n_chunks:
            raise IndexError(f"chunk {k} outside 0..{self.n_chunks - 1}")
        start = k * self.chunk_size
        return start, min(start + self.chunk_size, self.events)

    def chunk_events(self, k: int) -> int:
        start, stop = self.chunk_range(k)
        return stop - start

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """The plan stored in a manifest; GansimError naming what is missing or of the wrong type."""
        if not isinstance(d, dict):
            raise GansimError("the manifest's plan is not a mapping")
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                raise GansimError(f"the manifest's plan lacks '{f.name}'")
            want = {"str": str, "int": int, "float": (int, float), "bool": bool}[str(f.type)]
            if not isinstance(d[f.name], want) or (want is int and isinstance(d[f.name], bool)):
                raise GansimError(f"the manifest's plan has {f.name} = {d[f.name]!r}, expected {f.type}")
            kw[f.name] = d[f.name]
        return cls(**kw)

    def plan_id(self) -> str:
        """Short hash of the identity fields; stamped into every chunk so foreign chunks are never adopted."""
        blob = json.dumps({k: getattr(self, k) for k in IDENTITY}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def differences(self, other: Plan) -> list[str]:
        """'field: old -> new' for every identity field that differs."""
        return [f"{k}: {getattr(other, k)!r} -> {getattr(self, k)!r}" for k in IDENTITY
                if getattr(self, k) != getattr(other, k)]


def assign_chunks(todo: list[int], rank: int, size: int) -> list[int]:
    """Static round-robin deal of the chunks still to do: rank r takes todo[r::size].

    Chunks have equal size, so static dealing balances homogeneous ranks without any messages; the content of a
    chunk depends on (seed, k) only, so which rank makes it never changes the bytes.
    """
    return sorted(todo)[rank::size]


def chunk_filename(k: int) -> str:
    return f"chunk_{k:08d}.h5"


def chunk_subdir(k: int, files_per_dir: int) -> str:
    """The fan-out directory of chunk k under chunks/: a parallel file system never sees huge directories."""
    return f"{k // files_per_dir:05d}"
