"""LAGAN jet-image preprocessing and N-subjettiness on constituent arrays (pure numpy, no Pythia/FastJet).

Image convention (what `gansim simulate jets` writes, and what readers of `image` can rely on):

* 25 x 25 pixels of 0.1 x 0.1 covering x, y in [-1.25, 1.25], where x is the (rotated, flipped) eta offset
  and y the (rotated) phi offset from the leading subjet; pixel value = scalar sum of constituent pT (GeV).
* ``image[row, col]``: ``col`` grows with x (left to right), ``row`` grows downwards, i.e. with -y, so
  ``plt.imshow(image)`` (origin upper) shows the physical picture. Pixel centres are `pixel_centres()`.
* Translation: the leading subjet sits in the centre pixel (12, 12).
* Rotation: the second subjet (or, with a single subjet, the pT-weighted principal axis) points straight
  down: it lands in column 12, rows > 12.
* Flip: columns are mirrored when needed so that the right half (cols 13..24) holds at least as much pT as
  the left half (cols 0..11).
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 25
HALF_WIDTH = 1.25
PIXEL = 2 * HALF_WIDTH / IMAGE_SIZE  # 0.1
CENTRE = IMAGE_SIZE // 2  # 12


def wrap_phi(dphi: np.ndarray | float) -> np.ndarray:
    """Map an azimuth difference into [-pi, pi)."""
    return (np.asarray(dphi, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def pixel_centres() -> tuple[np.ndarray, np.ndarray]:
    """(x of each column, y of each row): x increases with the column, y decreases with the row."""
    c = -HALF_WIDTH + PIXEL * (np.arange(IMAGE_SIZE) + 0.5)
    return c, c[::-1].copy()


def principal_axis(pt: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Unit vector along the pT-weighted major axis, signed towards the bulk of the pT; None if degenerate."""
    w = np.asarray(pt, dtype=np.float64)
    if w.sum() <= 0:
        return None
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    dx, dy = x - mx, y - my
    cov = np.array([[np.sum(w * dx * dx), np.sum(w * dx * dy)], [np.sum(w * dx * dy), np.sum(w * dy * dy)]])
    vals, vecs = np.linalg.eigh(cov)
    if vals[-1] <= 1e-12 * max(w.sum(), 1.0):
        return None
    axis = vecs[:, -1]
    # An axis is a line: pick the sense in which the pT-weighted offsets from the leading subjet point.
    if np.sum(w * (x * axis[0] + y * axis[1])) < 0:
        axis = -axis
    return axis


def rotate(x: np.ndarray, y: np.ndarray, direction: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points about the origin so that `direction` (dx, dy) points straight down (0, -1)."""
    if direction is None or np.hypot(direction[0], direction[1]) < 1e-9:
        return x, y
    theta = -0.5 * np.pi - np.arctan2(direction[1], direction[0])
    c, s = np.cos(theta), np.sin(theta)
    return x * c - y * s, x * s + y * c


def pixelise(pt: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sum pT into the 25 x 25 grid (row = downwards y, col = x); points outside the window are dropped."""
    col = np.floor((x + HALF_WIDTH) / PIXEL).astype(np.int64)
    row = np.floor((HALF_WIDTH - y) / PIXEL).astype(np.int64)
    inside = (col >= 0) & (col < IMAGE_SIZE) & (row >= 0) & (row < IMAGE_SIZE)
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float64)
    np.add.at(image, (row[inside], col[inside]), np.asarray(pt, dtype=np.float64)[inside])
    return image


def flip_positive(image: np.ndarray) -> np.ndarray:
    """Mirror columns when the left half holds more pT than the right (positive skew)."""
    if image[:, :CENTRE].sum() > image[:, CENTRE + 1:].sum():
        return image[:, ::-1].copy()
    return image


def jet_image(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray,
              subjet_eta: np.ndarray, subjet_phi: np.ndarray) -> np.ndarray:
    """LAGAN-preprocessed image (25, 25) float32 of one jet's constituents.

    subjet_eta/phi are the trimmed subjets ordered by decreasing pT (at least one).
    """
    pt = np.asarray(pt, dtype=np.float64)
    eta0, phi0 = float(subjet_eta[0]), float(subjet_phi[0])
    x = np.asarray(eta, dtype=np.float64) - eta0
    y = wrap_phi(np.asarray(phi) - phi0)
    direction = None
    if len(subjet_eta) > 1:
        direction = np.array([subjet_eta[1] - eta0, float(wrap_phi(subjet_phi[1] - phi0))])
        if np.hypot(*direction) < 1e-6:
            direction = None
    if direction is None:
        direction = principal_axis(pt, x, y)
    x, y = rotate(x, y, direction)
    return flip_positive(pixelise(pt, x, y)).astype(np.float32)


def delta_r(rap_a: np.ndarray, phi_a: np.ndarray, rap_b: np.ndarray, phi_b: np.ndarray) -> np.ndarray:
    """Pairwise distances (len(a), len(b)) in the (rapidity, phi) plane."""
    dr = np.subtract.outer(np.asarray(rap_a, float), np.asarray(rap_b, float))
    dp = wrap_phi(np.subtract.outer(np.asarray(phi_a, float), np.asarray(phi_b, float)))
    return np.hypot(dr, dp)


def nsubjettiness(pt: np.ndarray, rap: np.ndarray, phi: np.ndarray, axes_rap: np.ndarray, axes_phi: np.ndarray,
                  r0: float = 1.0, beta: float = 1.0) -> float:
    """Normalised tau_N = sum_k pT_k min_a dR_ka^beta / (sum_k pT_k R0^beta) for the given N axes."""
    pt = np.asarray(pt, dtype=np.float64)
    if len(pt) == 0 or len(axes_rap) == 0:
        return 0.0
    d0 = pt.sum() * r0 ** beta
    if d0 <= 0:
        return 0.0
    dmin = delta_r(rap, phi, axes_rap, axes_phi).min(axis=1)
    return float(np.sum(pt * dmin ** beta) / d0)


def tau21(tau1: float, tau2: float) -> float:
    """tau2 / tau1, 0 when tau1 vanishes (a one-constituent jet) so files never hold NaN."""
    return float(tau2 / tau1) if tau1 > 0 else 0.0
