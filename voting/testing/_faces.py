"""The demo's synthetic faces and the TEST face engine that compares them. NEVER for a real election: the
pictures are drawn cartoons, not photographs of anyone, and the engine compares pictures, not faces.

* :func:`demo_face_image` draws a resident's stand-in "photo" (PNG): a cartoon face in front of a tiled
  wall, every colour, shape and position taken from a hash of the resident id, so that two residents'
  pictures differ clearly and the same resident always gets the same picture.
* :class:`PerceptualTestMatcher` implements :class:`voting.auth.FaceMatcher` for the demo and the tests: it
  decodes both pictures with Pillow, crops each to its content (a camera frame shows the picture on a white
  background), scales it to a 16 × 16 grid of colours and takes the correlation of the two grids as the
  score. A camera's picture of a resident's own drawing (Chromium's fake camera: scaled, re-encoded as
  JPEG, colours shifted a little) scores near 1; another resident's drawing scores far below the threshold.
  Liveness is only the booth's evidence being present and well formed (:func:`booth_liveness_evidence`):
  the engine cannot tell a live person from a printout, and says so in its engine id.

Anything it cannot read with confidence — a capture or reference that is not a JPEG/PNG/WebP picture, that
is larger than its limits, whose declared media type is not its format — raises
:class:`voting.auth.FaceMatchError` (``face.rejected`` for the capture, ``face.reference`` for the
reference): fail closed.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import json
import math
from collections.abc import Sequence
from typing import Final

from PIL import Image, ImageChops, ImageDraw, ImageOps

from voting.auth import FaceMatchError, FaceMatchResult, LiveCapture, ReferenceImageSource

__all__ = [
    "LIVENESS_FORMAT",
    "TEST_FACE_ENGINE_ID",
    "PerceptualTestMatcher",
    "booth_liveness_evidence",
    "demo_face_image",
]

#: the engine id on the public record of every ballot the test engine accepted: it says it is a test engine
TEST_FACE_ENGINE_ID: Final = "tvote-test-engine/perceptual-picture-match/1 (never for production)"
#: the booth's liveness evidence (web/src/booth/lib/camera.js): JSON with the prompt shown and a second frame
LIVENESS_FORMAT: Final = "tvote-booth-liveness/1"
_LIVENESS_PROMPTS: Final = frozenset({"turn-left", "turn-right"})
_LIVENESS_KEYS: Final = frozenset({"format", "prompt", "delay_ms", "frame"})
_FORMATS: Final[dict[str, str]] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_GRID: Final = 16  # the grid the pictures are compared on (cells per side)
_WORK: Final = 256  # decoded pictures are first scaled to at most this many pixels per side
_MARGIN: Final = 40  # a pixel whose every channel is within this of white is background, not content

# ------------------------------------------------------------------------------------- the synthetic faces

_W, _H = 240, 320  # 3:4, the shape of a photo for an identity document
_SKIN: Final = [
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 128),
    (198, 134, 90),
    (161, 102, 64),
    (112, 72, 46),
]
_HAIR: Final = [(24, 20, 18), (70, 44, 28), (120, 82, 48), (196, 160, 96), (150, 150, 150), (160, 60, 30)]
_IRIS: Final = [(60, 40, 20), (40, 90, 160), (60, 120, 70), (90, 90, 90)]


class _Draws:
    """Deterministic numbers from SHA-256 of a seed (a picture's features; nothing secret)."""

    def __init__(self, seed: bytes) -> None:
        self._seed, self._pool, self._n = seed, b"", 0

    def byte(self) -> int:
        if not self._pool:
            self._pool = hashlib.sha256(self._seed + self._n.to_bytes(4, "big")).digest()
            self._n += 1
        b, self._pool = self._pool[0], self._pool[1:]
        return b

    def frac(self) -> float:
        return self.byte() / 255

    def between(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.frac()

    def pick(self, options: Sequence[tuple[int, int, int]]) -> tuple[int, int, int]:
        return options[self.byte() % len(options)]


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _darker(c: tuple[int, int, int], by: int) -> tuple[int, int, int]:
    return max(0, c[0] - by), max(0, c[1] - by), max(0, c[2] - by)


@functools.lru_cache(maxsize=1024)
def demo_face_image(resident_id: str) -> bytes:
    """A synthetic stand-in for a resident's face photo: a drawn cartoon (PNG, 240 × 320), its features taken
    from a hash of ``resident_id`` (no biometrics anywhere in the demo)."""
    r = _Draws(b"tvote-demo-face/1\0" + resident_id.encode("utf-8"))
    img = Image.new("RGB", (_W, _H))
    d = ImageDraw.Draw(img)
    # the wall behind: a grid of tiles around one hue, never close to white (the camera's background)
    hue, cols, rows = r.frac(), 4, 5
    for i in range(cols):
        for j in range(rows):
            tile = _hsv(hue + r.between(-0.25, 0.25), r.between(0.3, 0.8), r.between(0.3, 0.85))
            d.rectangle([i * _W / cols, j * _H / rows, (i + 1) * _W / cols, (j + 1) * _H / rows], fill=tile)
    # shoulders, perhaps a striped shirt
    shirt_box = (_W / 2 - r.between(0.37, 0.5) * _W, _H * 0.78, _W / 2 + r.between(0.37, 0.5) * _W, _H * 1.35)
    d.ellipse(shirt_box, fill=_hsv(r.frac(), r.between(0.4, 0.9), r.between(0.3, 0.85)))
    if r.frac() < 0.6:
        stripes, mask = img.copy(), Image.new("L", (_W, _H), 0)
        ImageDraw.Draw(mask).ellipse(shirt_box, fill=255)
        colour, step = _hsv(r.frac(), 0.3, r.between(0.2, 0.9)), int(r.between(8, 20))
        for y in range(int(_H * 0.8), _H, step):
            ImageDraw.Draw(stripes).line([(0, y), (_W, y)], fill=colour, width=4)
        img.paste(stripes, (0, 0), mask)
    skin, hair = r.pick(_SKIN), r.pick(_HAIR)
    cx, cy = _W / 2 + r.between(-12, 12), _H * r.between(0.42, 0.5)
    fw, fh = _W * r.between(0.46, 0.62), _H * r.between(0.42, 0.54)
    d.rectangle([cx - fw * 0.18, cy + fh * 0.3, cx + fw * 0.18, _H * 0.84], fill=skin)  # neck
    style = r.byte() % 4
    if style == 1:  # long hair behind the face
        box = (cx - fw * 0.62, cy - fh * 0.58, cx + fw * 0.62, cy + fh * 0.55)
        d.rounded_rectangle(box, radius=int(fw * 0.4), fill=hair)
    d.ellipse([cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], fill=skin)
    if style in (0, 1, 2):  # hair on top
        d.chord(
            [cx - fw * 0.55, cy - fh * 0.62, cx + fw * 0.55, cy + fh * r.between(0.0, 0.2)],
            180,
            360,
            fill=hair,
        )
    if style == 2:  # a side parting
        tip = (cx + fw * r.between(-0.2, 0.3), cy - fh * 0.5)
        d.polygon([(cx - fw * 0.5, cy - fh * 0.1), tip, (cx - fw * 0.1, cy - fh * 0.2)], fill=hair)
    if style == 3:  # a cap
        cap = _hsv(r.frac(), 0.8, 0.6)
        d.pieslice([cx - fw * 0.55, cy - fh * 0.65, cx + fw * 0.55, cy + fh * 0.1], 180, 360, fill=cap)
        d.rectangle([cx - fw * 0.7, cy - fh * 0.3, cx + fw * 0.2, cy - fh * 0.24], fill=cap)
    for sx in (-1, 1):  # ears
        d.ellipse([cx + sx * fw / 2 - 8, cy - 10, cx + sx * fw / 2 + 8, cy + 16], fill=skin)
    ey, gap = cy - fh * r.between(0.02, 0.14), fw * r.between(0.17, 0.26)
    ew, eh = fw * r.between(0.09, 0.14), fh * r.between(0.04, 0.08)
    iris, tilt, brow = r.pick(_IRIS), r.between(-6, 6), _darker(hair, 30)
    for sx in (-1, 1):  # eyes and eyebrows
        ex = cx + sx * gap
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(250, 250, 250))
        d.ellipse([ex - eh, ey - eh, ex + eh, ey + eh], fill=iris)
        d.ellipse([ex - eh / 2, ey - eh / 2, ex + eh / 2, ey + eh / 2], fill=(10, 10, 10))
        d.line(
            [(ex - ew, ey - eh * 2.2 + sx * tilt), (ex + ew, ey - eh * 2.2 - sx * tilt)], fill=brow, width=4
        )
    if r.frac() < 0.3:  # glasses
        for sx in (-1, 1):
            ex = cx + sx * gap
            d.ellipse(
                [ex - ew * 1.5, ey - eh * 2.2, ex + ew * 1.5, ey + eh * 2.2], outline=(30, 30, 30), width=3
            )
        d.line([(cx - gap + ew * 1.5, ey), (cx + gap - ew * 1.5, ey)], fill=(30, 30, 30), width=3)
    nose = fh * r.between(0.1, 0.2)
    d.line(
        [(cx, ey + eh), (cx - nose * 0.3, ey + eh + nose), (cx + 4, ey + eh + nose)],
        fill=_darker(skin, 45),
        width=3,
    )
    my, mw, curve = cy + fh * r.between(0.2, 0.3), fw * r.between(0.12, 0.24), r.between(-8, 14)
    lips = _hsv(r.between(-0.03, 0.03), 0.6, 0.6)
    if abs(curve) > 2:  # a smile or a frown
        start, end = (20, 160) if curve > 0 else (200, 340)
        d.arc([cx - mw, my - 8 - curve, cx + mw, my + 8 + curve], start, end, fill=lips, width=4)
    else:
        d.line([(cx - mw, my), (cx + mw, my)], fill=lips, width=4)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


# -------------------------------------------------------------------------------------- the test engine


def booth_liveness_evidence(frame: bytes, *, prompt: str = "turn-left", delay_ms: int = 1500) -> bytes:
    """Liveness evidence as the booth sends it (web/src/booth/lib/camera.js): the prompt that was shown, the
    delay, and the second frame (a picture) taken after it."""
    body = {"format": LIVENESS_FORMAT, "prompt": prompt, "delay_ms": delay_ms, "frame": frame.hex()}
    return json.dumps(body, separators=(",", ":")).encode("ascii")


class PerceptualTestMatcher:
    """The demo's and the tests' face engine (:class:`voting.auth.FaceMatcher`): a perceptual comparison of
    two pictures (see the module docstring). TEST ONLY: it compares pictures, it recognises no one.

    ``max_bytes`` and ``max_pixels`` bound what it decodes; ``threshold`` is the score a match needs.
    """

    def __init__(
        self,
        engine_id: str = TEST_FACE_ENGINE_ID,
        *,
        threshold: float = 0.80,
        max_bytes: int = 8_000_000,
        max_pixels: int = 4096 * 4096,
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.engine_id = engine_id
        self.threshold = threshold
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels

    def match(self, reference: ReferenceImageSource, live: LiveCapture) -> FaceMatchResult:
        ref = self._grid(reference.image, reference.media_type, "face.reference", "the reference photo")
        cap = self._grid(live.image, live.media_type, "face.rejected", "the live capture")
        score = 0.0
        if ref is not None and cap is not None:
            (ref_cells, ref_aspect), (cap_cells, cap_aspect) = ref, cap
            shape = min(ref_aspect, cap_aspect) / max(ref_aspect, cap_aspect)
            score = round(min(1.0, max(0.0, _correlation(ref_cells, cap_cells)) * shape), 6)
        return FaceMatchResult(
            score >= self.threshold,
            score,
            self.threshold,
            self._liveness(live.liveness_evidence),
            self.engine_id,
        )

    def _decode(self, data: bytes, media_type: str, code: str, what: str) -> Image.Image:
        expected = _FORMATS.get(media_type)
        if expected is None:
            raise FaceMatchError(code, f"{what} has a media type the test engine does not read")
        if not data or len(data) > self._max_bytes:
            raise FaceMatchError(code, f"{what} is empty or too large")
        try:
            img = Image.open(io.BytesIO(data), formats=[expected])
            w, h = img.size
            if w < 1 or h < 1 or w * h > self._max_pixels:
                raise FaceMatchError(code, f"{what} has too many pixels")
            if img.format == "JPEG":
                img.draft("RGB", (_WORK, _WORK))  # decode at a reduced size: faster, and enough
            rgb = img.convert("RGB")
            rgb.thumbnail((_WORK, _WORK), Image.Resampling.BOX)
        except FaceMatchError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise FaceMatchError(
                code, f"{what} is not a {media_type} picture the test engine reads"
            ) from None
        return rgb

    def _grid(self, data: bytes, media_type: str, code: str, what: str) -> tuple[list[int], float] | None:
        """The picture's content (the picture without its white background) as a 16 × 16 grid of RGB values,
        and the content's aspect ratio; ``None`` when there is no content (an empty white frame)."""
        rgb = self._decode(data, media_type, code, what)
        # the camera's white, whatever its white balance: each channel stretched to its full range
        levelled = ImageOps.autocontrast(rgb, cutoff=(0, 0.5))
        white = Image.new("RGB", rgb.size, "white")
        red, green, blue = ImageChops.difference(levelled, white).split()
        distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
        box = distance.point(lambda v: 255 if v > _MARGIN else 0).getbbox()
        if box is None or box[2] - box[0] < 8 or box[3] - box[1] < 8:
            return None
        content = rgb.crop(box)
        # the same for the content's colours: a camera's gain and offset per channel do not count
        cells = ImageOps.autocontrast(content, cutoff=0.5).resize((_GRID, _GRID), Image.Resampling.BOX)
        return list(cells.tobytes()), content.width / content.height

    def _liveness(self, evidence: bytes) -> bool:
        """The booth's evidence, present and well formed: the format, a known prompt, a plausible delay and a
        second frame that is a picture. (A test engine cannot tell a live person from a printout.)"""
        try:
            obj = json.loads(evidence.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False
        if not isinstance(obj, dict) or set(obj) != _LIVENESS_KEYS or obj["format"] != LIVENESS_FORMAT:
            return False
        delay, frame = obj["delay_ms"], obj["frame"]
        if obj["prompt"] not in _LIVENESS_PROMPTS or type(delay) is not int or not 200 <= delay <= 10_000:
            return False
        if not isinstance(frame, str) or not frame or frame != frame.lower():
            return False
        try:
            picture = bytes.fromhex(frame)
            with Image.open(io.BytesIO(picture), formats=list(_FORMATS.values())) as img:
                w, h = img.size
                if w * h > self._max_pixels:
                    return False
                img.load()
        except (ValueError, OSError, SyntaxError, Image.DecompressionBombError):
            return False
        return True


def _correlation(a: Sequence[int], b: Sequence[int]) -> float:
    """Pearson's correlation of two equally long sequences (0 when either is constant)."""
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:
        return 0.0
    return cov / math.sqrt(va * vb)
