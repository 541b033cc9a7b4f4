"""Measure the mean-face template behind ``dlib.get_face_chip`` (run once; needs dlib).

dlib maps chip pixels to image pixels by a least-squares similarity from a fixed template
(in chip pixels) to the landmarks, then extracts through a rectangle whose corners are the
chip's corner pixels. This script treats dlib as a black box:

1. It extracts chips from two float "ramp" images (pixel value = x, and = y), so every chip
   pixel reports the exact image point it was sampled from, and fits the chip -> image affine.
2. It undoes the rectangle step (the extraction scale is ``(size * s - 1) / (size - 1)`` for a
   least-squares scale ``s``), giving the least-squares similarity ``z = a + ib`` and ``t``.
3. For a fixed template, ``z`` is linear in the landmarks: ``z = sum_i w_i p_i`` (complex), with
   ``w_i = conj(s_i - mean(s)) / sum |s_j - mean(s)|^2``. Regressing ``z`` on random landmark
   sets gives ``w`` and so the centred template; ``t`` gives its mean.

It prints the template in the unit square of an unpadded chip (``facefill.models.chip``
stores these values). Usage: ``python tools/derive_dlib_chip_template.py``.
"""

import dlib
import numpy as np

SIZE, PAD = 150, 0.25
rng = np.random.default_rng(0)
ramp_x, ramp_y = np.meshgrid(np.arange(2000, dtype=np.float32), np.arange(2000, dtype=np.float32))


def chip_to_image(points: np.ndarray) -> np.ndarray:
    rect = dlib.rectangle(0, 0, 100, 100)
    shape = dlib.full_object_detection(rect, dlib.points([dlib.point(int(x), int(y)) for x, y in points]))
    details = dlib.get_face_chip_details(shape, SIZE, PAD)
    cx, cy = dlib.extract_image_chip(ramp_x, details), dlib.extract_image_chip(ramp_y, details)
    r, c = np.mgrid[0:SIZE, 0:SIZE]
    design = np.stack([c.ravel(), r.ravel(), np.ones(c.size)], 1)
    return np.stack([np.linalg.lstsq(design, v.ravel(), rcond=None)[0] for v in (cx, cy)])


def least_squares_similarity(aff: np.ndarray) -> tuple[complex, np.ndarray]:
    m = complex(aff[0, 0], aff[1, 0])
    s = (abs(m) * (SIZE - 1) + 1) / SIZE
    z = m / abs(m) * s
    centre = aff[:, :2] @ np.full(2, (SIZE - 1) / 2) + aff[:, 2]
    lin = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return z, centre - lin @ np.full(2, SIZE / 2)


def derive(n_points: int, rough: np.ndarray, samples: int, size_px: float) -> np.ndarray:
    zs, ts, ps = [], [], []
    for _ in range(samples):
        ang, scale = rng.uniform(-0.5, 0.5), size_px * rng.uniform(0.8, 1.2)
        rot = scale * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        pts = np.round(rough @ rot.T + rng.normal(0, 3, rough.shape) + rng.uniform(800, 1200, 2))
        z, t = least_squares_similarity(chip_to_image(pts))
        zs.append(z), ts.append(t), ps.append(pts)
    p = np.array([q[:, 0] + 1j * q[:, 1] for q in ps])
    w = np.linalg.lstsq(p, np.array(zs), rcond=None)[0]
    centred = np.conj(w) / np.sum(np.abs(w) ** 2)
    used = np.abs(w) > 1e-9
    means = []
    for z, t, q in zip(zs, ts, ps):
        lin = np.array([[z.real, -z.imag], [z.imag, z.real]])
        means.append(np.linalg.solve(lin, q[used].mean(0) - t))
    mean = np.mean(means, 0)
    template = np.stack([centred.real, centred.imag], 1) + mean
    template[~used] = np.nan
    return template / SIZE * (1 + 2 * PAD) - PAD


if __name__ == "__main__":
    five = np.array([[0.86, 0.21], [0.65, 0.23], [0.12, 0.21], [0.33, 0.23], [0.49, 0.63]])
    print("5-point template (x, y):")
    print(np.array2string(derive(5, five, 60, 80), precision=7, separator=", "))
    # A rough 68-point face: only its overall layout matters for conditioning the regression.
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    rough68 = np.stack([0.5 + 0.4 * np.cos(t) * (1 + 0.1 * np.sin(7 * t)), 0.5 + 0.45 * np.sin(t)], 1)
    print("68-point template (x, y; nan = not used by dlib):")
    print(np.array2string(derive(68, rough68, 600, 40), precision=7, separator=", ", threshold=10000))
