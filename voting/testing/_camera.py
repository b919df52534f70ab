"""Chromium's fake camera for the booth's browser tests and ``tvote demo --serve``.

Chromium started with ``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream
--use-file-for-fake-video-capture=<file>`` answers ``getUserMedia`` with the frames of that file instead of
a camera. It reads two formats, told apart by the file's suffix: Y4M (``.y4m``) and Motion JPEG (``.mjpeg``:
JPEG images one after the other, played at 30 frames a second, looped).
:func:`write_fake_camera_video` writes the second from any still picture Pillow opens (a face photo, a QR
code), so the "camera" sees that picture.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

from PIL import Image

__all__ = ["FAKE_CAMERA_SIZE", "write_fake_camera_video"]

#: the frame size of the fake camera's video (4:3, what a phone's front camera offers at the least)
FAKE_CAMERA_SIZE: Final[tuple[int, int]] = (640, 480)


def write_fake_camera_video(picture: bytes, path: Path, *, frames: int = 30) -> Path:
    """Write ``picture`` (PNG, JPEG or any format Pillow reads) as a Motion-JPEG file of ``frames`` frames at
    :data:`FAKE_CAMERA_SIZE`: the picture scaled to fit, centred on a white background (a QR code keeps its
    quiet zone). ``path`` must end in ``.mjpeg`` (Chromium picks the reader by the suffix). Returns
    ``path``."""
    if path.suffix != ".mjpeg":
        raise ValueError(f"Chromium reads a Motion-JPEG fake camera only from a .mjpeg file, not {path.name}")
    if not 1 <= frames <= 3000:
        raise ValueError("frames must be between 1 and 3000")
    with Image.open(io.BytesIO(picture)) as src:
        still = src.convert("RGB")
    still.thumbnail(FAKE_CAMERA_SIZE, Image.Resampling.LANCZOS)
    frame = Image.new("RGB", FAKE_CAMERA_SIZE, "white")
    frame.paste(still, ((FAKE_CAMERA_SIZE[0] - still.width) // 2, (FAKE_CAMERA_SIZE[1] - still.height) // 2))
    buf = io.BytesIO()
    frame.save(buf, "JPEG", quality=92)
    path.write_bytes(buf.getvalue() * frames)
    return path
