"""The smooth-kernel paper's synthetic "four shapes" data set (Section 4.1), drawn here instead of downloaded.

The paper trains on Kaggle's four-shapes set (smeschke/four-shapes): "Each image in this data set has a white
background and a black foreground depicting one of the four shapes: circle, star, square, and triangle". It does
not state the image size it trained at (the Kaggle images are larger photos-of-drawings); we draw 28 x 28
grayscale by default, the MNIST format, so the paper's small CNN and every MNIST setting (one channel, 28 px,
no augmentation) apply unchanged, and a five-pointed star is still recognisable at that size.

Each image: one black shape on white, random size (circumradius 45-100% of the largest that fits), random centre
(the whole shape at least ``margin`` pixels inside the border) and random rotation; drawn with Pillow at
``supersample`` times the size and box-filtered down (anti-aliased edges). Classes 0..3 are
:data:`SHAPE_CLASSES`, balanced (counts differ by at most one) and shuffled. numpy + Pillow only (no torch).
"""
from __future__ import annotations

import numpy as np

from .registry import CLASS_NAMES

SHAPE_CLASSES = CLASS_NAMES["shapes"]
STAR_INNER = 0.381966  # inner / outer radius of a regular five-pointed star (pentagram outline): sin 18 / sin 54


def shape_vertices(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Polygon vertices (V, 2) as (x, y) of a shape of circumradius ``r`` centred at (cx, cy), rotated by
    ``angle`` (radians). Circles have none (drawn as an ellipse)."""
    if kind == "circle":
        return np.zeros((0, 2))
    if kind == "star":
        radii = np.where(np.arange(10) % 2 == 0, r, r * STAR_INNER)
        theta = angle - np.pi / 2 + np.arange(10) * np.pi / 5
    elif kind == "square":
        radii, theta = np.full(4, r), angle + np.pi / 4 + np.arange(4) * np.pi / 2
    elif kind == "triangle":
        radii, theta = np.full(3, r), angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    else:
        raise ValueError(f"unknown shape {kind!r}; known: {SHAPE_CLASSES}")
    return np.stack([cx + radii * np.cos(theta), cy + radii * np.sin(theta)], 1)


def draw_shape(kind: str, size: int, cx: float, cy: float, r: float, angle: float, supersample: int = 8) -> np.ndarray:
    """One (size, size) uint8 image: black ``kind`` on white, coordinates in output pixels (pixel centres at
    i + 0.5), anti-aliased by drawing at ``supersample`` x and averaging each s x s block."""
    from PIL import Image, ImageDraw

    s = int(supersample)
    big = Image.new("L", (size * s, size * s), 255)
    draw = ImageDraw.Draw(big)
    if kind == "circle":
        draw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=0)
    else:
        draw.polygon([(float(px * s), float(py * s)) for px, py in shape_vertices(kind, cx, cy, r, angle)], fill=0)
    a = np.asarray(big, dtype=np.float64).reshape(size, s, size, s).mean((1, 3))
    return np.rint(a).astype(np.uint8)


def make_shapes(n: int, size: int = 28, seed: int = 0, *, margin: float = 1.0, min_scale: float = 0.45,
                supersample: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` four-shapes images: (x uint8 (n, size, size, 1) NHWC, y int64 (n,)), deterministic for ``seed``.

    Labels: ``n // 4`` of each class (the first ``n % 4`` classes one more), in a seeded random order.
    Circumradius r = u * (size / 2 - margin) with u ~ U(min_scale, 1); the centre is uniform over the positions
    that keep the shape's bounding box ``margin`` pixels inside the image; rotation uniform in [0, 2 pi).
    """
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must lie in (0, 1], got {min_scale}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    x = np.empty((n, size, size, 1), dtype=np.uint8)
    r_max = size / 2 - margin
    for i, label in enumerate(y):
        kind = SHAPE_CLASSES[label]
        r = rng.uniform(min_scale, 1.0) * r_max
        angle = rng.uniform(0.0, 2 * np.pi)
        verts = shape_vertices(kind, 0.0, 0.0, r, angle)
        lo, hi = (verts.min(0), verts.max(0)) if len(verts) else (np.array([-r, -r]), np.array([r, r]))
        cx = rng.uniform(margin - lo[0], size - margin - hi[0])
        cy = rng.uniform(margin - lo[1], size - margin - hi[1])
        x[i, :, :, 0] = draw_shape(kind, size, cx, cy, r, angle, supersample)
    return x, y


def shapes_raw(n_train: int = 8000, n_test: int = 2000, size: int = 28, seed: int = 0):
    """(x_train, y_train, x_test, y_test) as :func:`specrobust.data.load_raw` returns them: two independent draws
    (seeds derived from ``seed``), so no test image is a training image."""
    seeds = np.random.SeedSequence(seed).generate_state(2)
    x_tr, y_tr = make_shapes(n_train, size, int(seeds[0]))
    x_te, y_te = make_shapes(n_test, size, int(seeds[1]))
    return x_tr, y_tr, x_te, y_te
