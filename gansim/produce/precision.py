"""--precision: an explicit, bounded rounding of the cell / pixel values before storage (lossless by default).

  lossless     the generator's float32 values, bit for bit
  bits:M       keep M explicit mantissa bits (round to nearest even): |stored - x| <= 2^-(M+1) |x|
  quantum:Q    round to a multiple of q, the largest power of two <= Q (file units: MeV cells, GeV pixels):
               |stored - x| <= q/2 <= Q/2; values below q/2 become exact zeros

Both keep float32 on disk (any reader sees plain numbers); the zeroed low mantissa bits and the extra exact zeros are
what the byte-shuffle + codec then squeeze out. Conditions (energies, labels) are never rounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gansim.errors import GansimError

FLOAT32_MANTISSA = 23


@dataclass(frozen=True)
class Precision:
    """A parsed --precision: mode 'lossless', 'bits' (value = mantissa bits) or 'quantum' (value = q)."""

    mode: str
    value: float = 0.0

    @property
    def text(self) -> str:
        if self.mode == "lossless":
            return "lossless"
        return f"bits:{int(self.value)}" if self.mode == "bits" else f"quantum:{self.value:g}"

    def bound(self, unit: str) -> str:
        """The stated error bound, for the dry run, the manifest and the README."""
        if self.mode == "lossless":
            return "exact (float32 as generated)"
        if self.mode == "bits":
            return f"relative error <= 2^-{int(self.value) + 1} = {2.0 ** -(self.value + 1):.2g} per value"
        return f"absolute error <= {self.value / 2:g} {unit} per value (values below {self.value / 2:g} -> 0)"

    def apply(self, a: np.ndarray) -> np.ndarray:
        """The rounded copy of a float32 array (a itself when lossless)."""
        if self.mode == "lossless":
            return a
        a = np.ascontiguousarray(a, dtype=np.float32)
        if self.mode == "quantum":
            return (np.rint(a / np.float32(self.value)) * np.float32(self.value)).astype(np.float32)
        shift = FLOAT32_MANTISSA - int(self.value)
        u = a.view(np.uint32)
        # round half to even on the kept bits: add 0x7ff..f plus the lowest kept bit, then clear the dropped bits
        bias = np.uint32((1 << (shift - 1)) - 1) + ((u >> np.uint32(shift)) & np.uint32(1))
        return ((u + bias) & np.uint32(~((1 << shift) - 1) & 0xFFFFFFFF)).view(np.float32)


def parse_precision(text: str) -> Precision:
    """'lossless', 'bits:M' (1 <= M <= 22) or 'quantum:Q' (Q > 0, rounded down to a power of two)."""
    s = (text or "lossless").strip().lower()
    mode, _, arg = s.partition(":")
    if mode == "lossless" and not arg:
        return Precision("lossless")
    try:
        value = float(arg)
    except ValueError:
        value = math.nan
    if mode == "bits" and value.is_integer() and 1 <= value <= FLOAT32_MANTISSA - 1:
        return Precision("bits", int(value))
    if mode == "quantum" and math.isfinite(value) and 2.0 ** -60 <= value <= 2.0 ** 40:
        return Precision("quantum", 2.0 ** math.floor(math.log2(value)))
    raise GansimError(f"--precision {text!r}: use lossless, bits:M (mantissa bits, 1..22) or quantum:Q (a positive "
                      "cell-energy quantum in file units, e.g. quantum:0.01 for MeV cells)")
