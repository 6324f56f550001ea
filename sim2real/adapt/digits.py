"""Offline digits benchmark: scikit-learn digits → MNIST-M-style digits on photo patches.

Needs no download. The source domain is :func:`sklearn.datasets.load_digits` (8×8 grey
digits) upscaled to ``size`` pixels, white on black, as RGB. The target domain blends
the same kind of digits into random patches of scikit-learn's bundled sample photos the
way Ganin et al. (2016) built MNIST-M: ``out = |patch − 255·digit|`` per channel.

Digits are split by sample index so the source, target-train and target-test sets never
share a digit image; each digit is rendered ``repeats`` times with a small random
affine jitter (and, for the target, a fresh photo patch each time).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sim2real.adapt.images import ImageSet

#: fraction of the 1797 digits in (source, target-train, target-test)
SPLIT_FRACTIONS = (0.55, 0.28, 0.17)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(np.asarray(im, dtype=np.uint8) for im in load_sample_images().images)


def split_indices(seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint digit indices for ``source``, ``target_train`` and ``target_test``."""
    n = len(_digits()[1])
    perm = np.random.default_rng(seed).permutation(n)
    a = int(SPLIT_FRACTIONS[0] * n)
    b = a + int(SPLIT_FRACTIONS[1] * n)
    return {"source": perm[:a], "target_train": perm[a:b], "target_test": perm[b:]}


def render_digit(digit: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """One 8×8 digit in [0, 1] → ``(size, size)`` float32 in [0, 1] with random shift/scale/rotation."""
    import cv2

    up = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR)
    angle = rng.uniform(-10.0, 10.0)
    scale = rng.uniform(0.85, 1.05)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += rng.uniform(-0.08, 0.08, size=2) * size
    return np.clip(cv2.warpAffine(up, m, (size, size), flags=cv2.INTER_LINEAR), 0.0, 1.0)


def photo_patch(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``(size, size, 3)`` uint8 patch of a sample photo, at a random zoom."""
    import cv2

    photo = _photos()[int(rng.integers(len(_photos())))]
    zoom = rng.uniform(0.15, 0.6)  # downscale so a patch holds texture, not one flat colour
    side = int(np.ceil(size / zoom))  # crop the region that becomes the patch, then shrink only it
    y = int(rng.integers(0, photo.shape[0] - side + 1))
    x = int(rng.integers(0, photo.shape[1] - side + 1))
    patch = cv2.resize(photo[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)


def make_digits_split(
    split: str, domain: str, size: int = 32, repeats: int = 1, seed: int = 0, split_seed: int = 0
) -> ImageSet:
    """Build one split of the benchmark (see :func:`_make_split`); memoised, arrays are read-only.

    Sets built with the same ``split_seed`` never share a digit image, whatever their ``seed``.
    """
    data = _make_split(split, domain, size, repeats, seed, split_seed)
    return ImageSet(data.images, data.labels, data.label_names, meta=dict(data.meta))


@lru_cache(maxsize=8)
def _make_split(split: str, domain: str, size: int, repeats: int, seed: int, split_seed: int) -> ImageSet:
    """Build one split of the benchmark.

    :param split: ``source``, ``target_train`` or ``target_test`` (which digit indices).
    :param domain: ``digits`` (grey digits on black) or ``photos`` (MNIST-M-style blend).
    :param size: output side length in pixels.
    :param repeats: renderings per digit (fresh jitter / photo patch each).
    :param seed: seeds the rendering (jitter, photo patches); same seeds → same images.
    :param split_seed: seeds the permutation of the 1797 digits that :func:`split_indices`
        cuts into the three splits; use one ``split_seed`` for all sets of an experiment.
    :return: :class:`ImageSet` with ``(N, size, size, 3)`` images and a ``label`` column (0–9).
    """
    if domain not in ("digits", "photos"):
        raise ValueError(f"domain must be 'digits' or 'photos', got {domain!r}")
    digits, targets = _digits()
    idx = split_indices(split_seed)[split]
    # one independent stream per (split, domain) so sets do not change when others do
    tag = {"source": 1, "target_train": 2, "target_test": 3}[split] * 10 + (domain == "photos")
    rng = np.random.default_rng([seed, tag])
    images, labels = [], []
    for _ in range(repeats):
        for i in idx:
            d = render_digit(digits[i], size, rng)
            if domain == "digits":
                img = np.repeat((d * 255.0 + 0.5).astype(np.uint8)[:, :, None], 3, axis=2)
            else:
                patch = photo_patch(size, rng).astype(np.float32)
                img = np.abs(patch - 255.0 * d[:, :, None]).clip(0, 255).astype(np.uint8)
            images.append(img)
            labels.append(targets[i])
    images_arr, labels_arr = np.stack(images), np.asarray(labels, dtype=np.float32)[:, None]
    images_arr.flags.writeable = False  # shared by every caller of the memoised split
    labels_arr.flags.writeable = False
    return ImageSet(
        images_arr,
        labels_arr,
        ("label",),
        meta={"benchmark": "digits", "split": split, "domain": domain, "size": size, "seed": seed, "split_seed": split_seed},
    )
