"""Image datasets: in-memory container, folders of PNG/JPEG files and ROS 2 bags.

An :class:`ImageSet` holds ``images`` as a ``uint8`` array of shape ``(N, H, W, 3)``
(RGB) and optional ``labels`` as a ``float32`` array of shape ``(N, K)`` with column
names (a class index is one column named ``label``). On disk a dataset is a folder of
image files plus an optional ``labels.csv`` whose first column is ``file`` (path
relative to the folder) followed by the numeric label columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sim2real._io import atomic_open, atomic_write_bytes
from sim2real.errors import DatasetError, LogError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class ImageSet:
    """Images ``(N, H, W, 3)`` uint8 RGB with optional labels ``(N, K)`` float32."""

    images: np.ndarray
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise DatasetError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.float32).reshape(len(self.images), -1)
            if len(self.label_names) != self.labels.shape[1]:
                raise DatasetError(f"{self.labels.shape[1]} label columns but names {self.label_names}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, index: np.ndarray | Sequence[int]) -> "ImageSet":
        index = np.asarray(index, dtype=np.int64)
        return ImageSet(
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            label_names=self.label_names,
            files=tuple(self.files[i] for i in index) if self.files else (),
            meta=dict(self.meta),
        )

    def columns(self, names: Sequence[str], where: str = "dataset") -> np.ndarray:
        """Label columns ``names`` as ``(N, len(names))`` float32; error naming ``where`` if absent."""
        if self.labels is None:
            raise DatasetError(f"{where}: has no labels (needs columns {list(names)})")
        missing = [n for n in names if n not in self.label_names]
        if missing:
            raise DatasetError(f"{where}: missing label columns {missing}; has {list(self.label_names)}")
        return self.labels[:, [self.label_names.index(n) for n in names]]

    def resized(self, size: int | tuple[int, int]) -> "ImageSet":
        """Copy with every image resized to ``size`` (``int`` → square), area/linear interpolation."""
        import cv2

        h, w = (size, size) if isinstance(size, int) else size
        if self.size == (h, w):
            return self
        interp = cv2.INTER_AREA if h < self.size[0] else cv2.INTER_LINEAR
        images = np.stack([cv2.resize(im, (w, h), interpolation=interp) for im in self.images])
        return ImageSet(images, self.labels, self.label_names, self.files, dict(self.meta))


def _as_rgb(img: np.ndarray | None, name: str, expect_size: tuple[int, int] | None) -> np.ndarray:
    """Validate a decoded OpenCV image (BGR/BGRA/gray) and return it as RGB uint8."""
    import cv2

    if img is None:
        raise DatasetError(f"{name}: unreadable image (not a valid PNG/JPEG file)")
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img // 257).astype(np.uint8)
        else:
            raise DatasetError(f"{name}: expected 8-bit image, got {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        raise DatasetError(f"{name}: expected 1, 3 or 4 channels, got shape {img.shape}")
    if expect_size is not None and img.shape[:2] != tuple(expect_size):
        raise DatasetError(
            f"{name}: image is {img.shape[0]}x{img.shape[1]} (HxW), expected {expect_size[0]}x{expect_size[1]}"
        )
    return img


def read_image(path: str | Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read one PNG/JPEG file as RGB uint8 ``(H, W, 3)``; :class:`DatasetError` naming the file if bad."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    return _as_rgb(img, str(path), expect_size)


def encode_png(image: np.ndarray) -> bytes:
    """RGB uint8 ``(H, W, 3)`` → PNG bytes."""
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 always encodes uint8 RGB
        raise DatasetError("could not encode PNG")
    return buf.tobytes()


def read_labels_csv(path: Path) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """Read ``labels.csv``: returns (files, column names, values ``(N, K)`` float32)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read labels file: {exc}") from None
    if not rows or not rows[0] or rows[0][0] != "file":
        raise DatasetError(f"{path}: expected a header row starting with 'file'")
    names = tuple(rows[0][1:])
    files, values = [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(names) + 1:
            raise DatasetError(f"{path}: line {lineno}: expected {len(names) + 1} fields, got {len(row)}")
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError:
            raise DatasetError(f"{path}: line {lineno}: label values must be numbers, got {row[1:]}") from None
        files.append(row[0])
    if not files:
        raise DatasetError(f"{path}: labels file has no rows")
    return files, names, np.asarray(values, dtype=np.float32).reshape(len(files), len(names))


def load_image_folder(
    folder: str | Path,
    size: tuple[int, int] | None = None,
    labels: bool | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Load a folder of PNG/JPEG images (sorted by name), with ``labels.csv`` if present.

    :param size: expected ``(H, W)``; ``None`` → every image must match the first one.
    :param labels: ``True`` requires ``labels.csv``, ``False`` ignores it, ``None`` uses it if present.
    :param limit: read at most this many images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such dataset folder")
    label_file = folder / "labels.csv"
    names: tuple[str, ...] = ()
    values = None
    if label_file.is_file() and labels is not False:
        files, names, values = read_labels_csv(label_file)
        paths = [folder / f for f in files]
    elif labels:
        raise DatasetError(f"{label_file}: labels file required but missing")
    else:
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise DatasetError(f"{folder}: no PNG/JPEG images in folder")
    if limit is not None:
        paths = paths[:limit]
        values = None if values is None else values[:limit]
    images = []
    for p in paths:
        img = read_image(p, size)
        size = size or img.shape[:2]
        images.append(img)
    return ImageSet(
        np.stack(images), values, names, tuple(str(p.relative_to(folder)) for p in paths), {"source": str(folder)}
    )


def write_image_folder(data: ImageSet, folder: str | Path, progress: bool = False) -> Path:
    """Write ``data`` as ``folder/images/NNNNNN.png`` plus ``labels.csv`` (atomic per file)."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    files = []
    for i, img in enumerate(tqdm(data.images, desc=f"writing {folder.name}", disable=not progress, leave=False)):
        rel = f"images/{i:06d}.png"
        atomic_write_bytes(folder / rel, encode_png(img))
        files.append(rel)
    with atomic_open(folder / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", *data.label_names])
        for i, rel in enumerate(files):
            row = [] if data.labels is None else [f"{v:.6g}" for v in data.labels[i]]
            writer.writerow([rel, *row])
    return folder


def _decode_ros_image(msg: Any, msgtype: str, where: str) -> np.ndarray:
    """``sensor_msgs/Image`` or ``CompressedImage`` message → RGB uint8 ``(H, W, 3)``."""
    import cv2

    if msgtype.endswith("CompressedImage"):
        buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
        return _as_rgb(img, where, None)
    enc = str(msg.encoding).lower()
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}.get(enc)
    if channels is None:
        raise DatasetError(f"{where}: unsupported image encoding {msg.encoding!r} (need rgb8/bgr8/rgba8/bgra8/mono8)")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if h * step > raw.size or step < w * channels:
        raise DatasetError(f"{where}: image data has {raw.size} bytes, expected {h}x{step} (height x step)")
    img = raw[: h * step].reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if enc in ("rgb8",):
        return img.copy()
    if enc in ("bgr8", "8uc3"):
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if enc == "rgba8":
        return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB)
    if enc == "bgra8":
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)


def load_rosbag_images(
    bag: str | Path, topic: str, size: tuple[int, int] | None = None, limit: int | None = None, every: int = 1
) -> ImageSet:
    """Read images of one ``sensor_msgs/msg/Image`` or ``CompressedImage`` topic from a ROS 2 bag.

    :param bag: the bag folder (sqlite3 or MCAP storage), read with ``rosbags``.
    :param size: resize every frame to ``(H, W)``; ``None`` → frames must all have one size.
    :param every: keep every ``every``-th message.
    """
    import cv2
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    bag = Path(bag)
    if not bag.exists():
        raise LogError(f"{bag}: no such ROS 2 bag")
    typestore = get_typestore(Stores.LATEST)
    images, stamps = [], []
    try:
        with Reader(bag) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                topics = sorted({c.topic for c in reader.connections})
                raise LogError(f"{bag}: topic {topic!r} not in bag (topics: {topics})")
            msgtype = conns[0].msgtype
            if msgtype not in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"):
                raise LogError(f"{bag}: topic {topic!r} has type {msgtype}, expected sensor_msgs/msg/Image or CompressedImage")
            for i, (_conn, stamp, raw) in enumerate(reader.messages(connections=conns)):
                if i % every:
                    continue
                where = f"{bag}: {topic}[{i}]"
                try:
                    msg = typestore.deserialize_cdr(raw, msgtype)
                except Exception as exc:  # corrupt CDR payload
                    raise LogError(f"{where}: cannot deserialize message: {exc}") from None
                img = _decode_ros_image(msg, msgtype, where)
                if size is not None and img.shape[:2] != tuple(size):
                    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                elif images and img.shape != images[0].shape:
                    raise DatasetError(f"{where}: frame is {img.shape[:2]}, earlier frames are {images[0].shape[:2]}")
                images.append(img)
                stamps.append(stamp)
                if limit is not None and len(images) >= limit:
                    break
    except (LogError, DatasetError):
        raise
    except Exception as exc:  # rosbags raises its own types for missing/corrupt metadata or storage
        raise LogError(f"{bag}: cannot read ROS 2 bag: {exc}") from None
    if not images:
        raise LogError(f"{bag}: topic {topic!r} has no messages")
    return ImageSet(np.stack(images), meta={"source": str(bag), "topic": topic, "stamps_ns": stamps})

