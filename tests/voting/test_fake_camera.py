"""voting.testing.write_fake_camera_video: a still picture as Chromium's Motion-JPEG fake camera (the browser
tests that read it through getUserMedia are tests/web/)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from voting.testing import FAKE_CAMERA_SIZE, write_fake_camera_video


def _png(size: tuple[int, int], colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_the_video_is_the_picture_centred_in_jpeg_frames(tmp_path: Path) -> None:
    out = write_fake_camera_video(_png((100, 200), "black"), tmp_path / "cam.mjpeg", frames=5)
    data = out.read_bytes()
    assert data.count(b"\xff\xd8\xff") == 5  # five JPEG frames, one after the other
    frame = data[: len(data) // 5]
    with Image.open(io.BytesIO(frame)) as img:
        assert img.format == "JPEG" and img.size == FAKE_CAMERA_SIZE
        rgb = img.convert("L")
        # scaled to the height, centred: dark in the middle, white at the sides
        assert rgb.getpixel((FAKE_CAMERA_SIZE[0] // 2, FAKE_CAMERA_SIZE[1] // 2)) < 40
        assert rgb.getpixel((10, FAKE_CAMERA_SIZE[1] // 2)) > 215


@pytest.mark.parametrize("name", ["cam.y4m", "cam.jpg", "cam"])
def test_only_a_mjpeg_file_is_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="mjpeg"):
        write_fake_camera_video(_png((10, 10), "red"), tmp_path / name)
    assert not (tmp_path / name).exists()


def test_a_file_that_is_not_a_picture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnidentifiedImageError):
        write_fake_camera_video(b"tvote-demo-face:R000001", tmp_path / "cam.mjpeg")
    assert not (tmp_path / "cam.mjpeg").exists()
