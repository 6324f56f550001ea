"""Datasets of sim2real.adapt: digits benchmark, style shift, folders, ROS 2 bags, rendered sets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from sim2real.adapt.data import apply_style, build_dataset, load_dataset, save_dataset
from sim2real.adapt.digits import make_digits_split, split_indices
from sim2real.adapt.images import DatasetError, ImageSet, load_image_folder, load_rosbag_images
from sim2real.adapt.style import StyleShift
from sim2real.errors import ConfigError, LogError


def test_digits_deterministic_disjoint_and_labelled():
    a = make_digits_split("target_train", "photos", size=16, repeats=1, seed=3, split_seed=3)
    b = make_digits_split("target_train", "photos", size=16, repeats=1, seed=3, split_seed=3)
    c = make_digits_split("target_train", "photos", size=16, repeats=1, seed=4, split_seed=3)
    assert a.images.shape[1:] == (16, 16, 3) and a.images.dtype == np.uint8
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    idx = split_indices(3)
    assert not set(idx["source"]) & set(idx["target_train"]) and not set(idx["target_test"]) & set(idx["source"])
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(a.labels[:, 0], load_digits().target[idx["target_train"]])
    src = make_digits_split("source", "digits", size=16, seed=3, split_seed=3)
    assert np.all(src.images[..., 0] == src.images[..., 2])  # grey source
    assert a.images.std(axis=(1, 2)).mean() > 5  # coloured photo patches, not flat
    # MNIST-M blend: where the digit is dark the patch shows through, colour varies per channel
    assert np.abs(a.images[..., 0].astype(int) - a.images[..., 1]).mean() > 1


def test_style_shift_deterministic_and_points_follow_lens():
    img = np.full((48, 64, 3), 40, np.uint8)
    u, v = 52, 8
    cv2.circle(img, (u, v), 2, (255, 255, 255), -1)
    shift = StyleShift.from_config({"lens_k1": -0.3, "color_cast": [1.0, 1.0, 1.0]})
    out = shift.apply(img, seed=1, index=0)
    np.testing.assert_array_equal(out, shift.apply(img, seed=1, index=0))
    gray = out[..., 0].astype(float)
    ys, xs = np.nonzero(gray > 150)
    # image-plane convention: pixel i spans [i, i + 1), so the dot's centre is at (u + 0.5, v + 0.5)
    moved = shift.map_points(np.array([u + 0.5, v + 0.5]), (48, 64), seed=1, index=0)
    assert np.hypot(xs.mean() + 0.5 - moved[0], ys.mean() + 0.5 - moved[1]) < 1.0
    assert np.hypot(moved[0] - u, moved[1] - v) > 2.0  # distortion did move it ...
    assert np.hypot(moved[0] - 32, moved[1] - 24) < np.hypot(u - 32, v - 24)  # ... inward (barrel)
    preset = StyleShift.from_config("shifted_camera")
    a, b = preset.apply(img, 5, 0), preset.apply(img, 5, 1)
    assert not np.array_equal(a, b) and not np.array_equal(a, img)
    with pytest.raises(ConfigError, match="blur_sigma"):
        StyleShift.from_config({"blur_sigma": [2, 1]})
    with pytest.raises(ConfigError, match="unknown style key"):
        StyleShift.from_config({"sharpness": 1})


def test_apply_style_moves_pixel_labels():
    data = ImageSet(np.zeros((2, 32, 32, 3), np.uint8), np.array([[30, 2, 1.0], [16, 16, 2.0]]),
                    ("target_u", "target_v", "depth"))
    out = apply_style(data, {"lens_k1": -0.2}, seed=0)
    assert out.labels[0, 2] == 1.0 and out.labels[1, 2] == 2.0  # non-pixel columns untouched
    np.testing.assert_allclose(out.labels[1, :2], [16, 16])  # the centre does not move
    assert np.hypot(*(out.labels[0, :2] - [30, 2])) > 1.0


def test_folder_roundtrip_and_resize(tmp_path: Path):
    data = make_digits_split("target_test", "photos", size=20, seed=0).subset(range(6))
    save_dataset(data, tmp_path / "ds", progress=False)
    back = load_dataset(tmp_path / "ds")
    np.testing.assert_array_equal(back.images, data.images)
    np.testing.assert_array_equal(back.labels, data.labels)
    assert back.meta["split"] == "target_test"
    spec = {"type": "folder", "path": str(tmp_path / "ds")}
    assert build_dataset(spec, 16).images.shape == (6, 16, 16, 3)


def test_folder_errors_name_the_file(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no PNG/JPEG images"):
        load_image_folder(empty)
    good = tmp_path / "good"
    good.mkdir()
    cv2.imwrite(str(good / "a.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(good / "b.png"), np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"b\.png: image is 9x8"):
        load_image_folder(good)
    (good / "b.png").unlink()
    (good / "c.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"c\.jpg: unreadable image"):
        load_image_folder(good)
    (good / "c.jpg").unlink()
    (good / "labels.csv").write_text("file,label\na.png,x\n")
    with pytest.raises(DatasetError, match=r"labels\.csv: line 2"):
        load_image_folder(good)
    (good / "labels.csv").write_text("file,label\nmissing.png,1\n")
    with pytest.raises(DatasetError, match=r"missing\.png: no such image file"):
        load_image_folder(good)


def _write_bag(path: Path, compressed: bool, n: int = 3, encoding: str = "bgr8", step: int = 30) -> None:
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.LATEST)
    Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9) as writer:
        if compressed:
            msgtype = "sensor_msgs/msg/CompressedImage"
            conn = writer.add_connection("/camera/image/compressed", msgtype, typestore=ts)
        else:
            msgtype = "sensor_msgs/msg/Image"
            conn = writer.add_connection("/camera/image_raw", msgtype, typestore=ts)
        other = writer.add_connection("/joint_states", "std_msgs/msg/String", typestore=ts)
        writer.write(other, 1, ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))
        for i in range(n):
            img = np.zeros((12, 10, 3), np.uint8)
            img[..., 0] = 10 * i  # red channel encodes the frame index
            img[2, 3] = (1, 2, 3)
            header = Header(stamp=Time(sec=i, nanosec=0), frame_id="cam")
            if compressed:
                ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                msg = ts.types[msgtype](header=header, format="png", data=buf.ravel())
            else:
                bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
                msg = ts.types[msgtype](header=header, height=12, width=10, encoding=encoding, is_bigendian=0,
                                         step=step, data=bgr.ravel())
            writer.write(conn, (i + 1) * 10**9, ts.serialize_cdr(msg, msgtype))


@pytest.mark.parametrize("compressed", [False, True])
def test_rosbag_images(tmp_path: Path, compressed: bool):
    bag = tmp_path / "bag"
    _write_bag(bag, compressed)
    topic = "/camera/image/compressed" if compressed else "/camera/image_raw"
    data = load_rosbag_images(bag, topic)
    assert data.images.shape == (3, 12, 10, 3)
    assert list(data.images[:, 0, 0, 0]) == [0, 10, 20]
    assert tuple(data.images[1, 2, 3]) == (1, 2, 3)
    assert build_dataset({"type": "rosbag", "path": str(bag), "topic": topic}, 8).images.shape == (3, 8, 8, 3)
    with pytest.raises(LogError, match="not in bag"):
        load_rosbag_images(bag, "/nope")
    with pytest.raises(LogError, match="expected sensor_msgs/msg/Image"):
        load_rosbag_images(bag, "/joint_states")
    with pytest.raises(LogError, match="no such ROS 2 bag"):
        load_rosbag_images(tmp_path / "missing", topic)


def test_rosbag_bad_frames(tmp_path: Path):
    _write_bag(tmp_path / "float", False, encoding="32FC1")
    with pytest.raises(DatasetError, match=r"/camera/image_raw\[0\]: unsupported image encoding '32FC1'"):
        load_rosbag_images(tmp_path / "float", "/camera/image_raw")
    _write_bag(tmp_path / "short", False, encoding="rgba8", step=40)  # 4 channels declared, 3 sent
    with pytest.raises(DatasetError, match=r"image_raw\[0\]: image data has 360 bytes"):
        load_rosbag_images(tmp_path / "short", "/camera/image_raw")
    with pytest.raises(DatasetError, match="uint8"):
        ImageSet(np.zeros((2, 4, 4, 2), np.uint8))


def _camera_env_available() -> bool:
    try:
        import gymnasium as gym

        import sim2real.envs  # noqa: F401

        return "sim2real/KukaReachCamera-v0" in gym.registry
    except Exception:
        return False


@pytest.mark.skipif(not _camera_env_available(), reason="camera env not built in this checkout")
def test_rendered_dataset_deterministic_with_labels(tmp_path: Path):
    from sim2real.adapt.render import LABEL_COLUMNS, RenderSpec, render_dataset

    spec = RenderSpec(profile="cad2rl_visual", n=3, seed=7, max_random_steps=2)
    a = render_dataset(spec, progress=False)
    b = render_dataset(RenderSpec(profile="cad2rl_visual", n=2, seed=7, max_random_steps=2), progress=False)
    np.testing.assert_array_equal(a.images[:2], b.images)  # sample i independent of n
    np.testing.assert_allclose(a.labels[:2], b.labels)
    assert a.label_names == LABEL_COLUMNS and a.labels.shape == (3, len(LABEL_COLUMNS))
    h, w = a.size
    vis = a.labels[:, LABEL_COLUMNS.index("target_visible")] > 0
    assert np.all((a.labels[vis, 0] >= 0) & (a.labels[vis, 0] <= w - 1))
    save_dataset(a, tmp_path / "r", progress=False)
    np.testing.assert_array_equal(load_dataset(tmp_path / "r").images, a.images)


def test_run_sets_share_one_digit_split_whatever_their_seeds():
    """Source, target-train and target-test of a run are rendered with different seeds but cut
    from one permutation of the digits (the run seed), so no digit image is in two sets."""
    from sklearn.datasets import load_digits

    from sim2real.adapt.trainer import load_domains

    from adapt_tiny import tiny_config, tiny_raw

    targets = load_digits().target
    for run_seed in (0, 5):
        cfg = tiny_config(tiny_raw("source_only"), "tiny.yaml", seed=run_seed)
        d = load_domains(cfg, None, progress=False)
        idx = split_indices(run_seed)
        assert not set(idx["source"]) & set(idx["target_train"]) and not set(idx["target_test"]) & set(idx["target_train"])
        for labels, split in ((d.ys, "source"), (d.yt, "target_train"), (d.y_eval, "target_test")):
            np.testing.assert_array_equal(labels.numpy().astype(int).ravel(), targets[idx[split]])
    # rendering seed and split seed are independent: another rendering of the same digits
    a = make_digits_split("target_test", "photos", size=16, seed=1, split_seed=2)
    b = make_digits_split("target_test", "photos", size=16, seed=7, split_seed=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, b.images)
