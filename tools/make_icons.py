"""Draw the app's icons (static/appIcon*.png) with the standard library only.

The icon is a rounded square with a flat line that jumps into a spike: a host's quiet Teredo
traffic, then a tunnel. The "Alt" icons are the same glyph on a transparent background, for
Splunk's dark app bar. Run `python tools/make_icons.py` after changing the drawing; the output is
deterministic, so tests can check that the committed PNGs are exactly what this script draws.
"""

import math
import struct
import sys
import zlib
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

RGBA = Tuple[int, int, int, int]

BACKGROUND: RGBA = (31, 59, 87, 255)
LINE: RGBA = (255, 255, 255, 255)
SPIKE: RGBA = (255, 140, 40, 255)
# The glyph in a unit square: a flat baseline, then the spike, then back down.
BASELINE = [(0.14, 0.68), (0.42, 0.68)]
SPIKE_LINE = [(0.42, 0.68), (0.55, 0.20), (0.66, 0.80), (0.74, 0.68), (0.86, 0.68)]
STROKE = 0.085
CORNER = 0.2
SUBSAMPLES = 4

ICONS = {
    "appIcon.png": (36, True),
    "appIcon_2x.png": (72, True),
    "appIconAlt.png": (36, False),
    "appIconAlt_2x.png": (72, False),
}


def _segment_distance(px: float, py: float, a: Tuple[float, float], b: Tuple[float, float]) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _near(px: float, py: float, line: Sequence[Tuple[float, float]]) -> bool:
    return any(_segment_distance(px, py, a, b) <= STROKE / 2 for a, b in zip(line, line[1:]))


def _inside_rounded_square(px: float, py: float) -> bool:
    cx = min(max(px, CORNER), 1 - CORNER)
    cy = min(max(py, CORNER), 1 - CORNER)
    return 0 <= px <= 1 and 0 <= py <= 1 and math.hypot(px - cx, py - cy) <= CORNER


def _sample(px: float, py: float, with_background: bool) -> Optional[RGBA]:
    if _near(px, py, SPIKE_LINE):
        return SPIKE
    if _near(px, py, BASELINE):
        return LINE
    if with_background and _inside_rounded_square(px, py):
        return BACKGROUND
    return None


def draw(size: int, with_background: bool) -> List[List[RGBA]]:
    """Rows of RGBA pixels, anti-aliased by averaging SUBSAMPLES x SUBSAMPLES samples per pixel."""
    rows = []
    n = SUBSAMPLES * SUBSAMPLES
    for y in range(size):
        row = []
        for x in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(SUBSAMPLES):
                for sx in range(SUBSAMPLES):
                    colour = _sample((x + (sx + 0.5) / SUBSAMPLES) / size,
                                     (y + (sy + 0.5) / SUBSAMPLES) / size, with_background)
                    if colour is not None:
                        alpha = colour[3]
                        acc[0] += colour[0] * alpha
                        acc[1] += colour[1] * alpha
                        acc[2] += colour[2] * alpha
                        acc[3] += alpha
            if acc[3]:
                pixel = (round(acc[0] / acc[3]), round(acc[1] / acc[3]), round(acc[2] / acc[3]),
                         round(acc[3] / n))
            else:
                pixel = (0, 0, 0, 0)
            row.append(pixel)
        rows.append(row)
    return rows


def encode_png(rows: List[List[RGBA]]) -> bytes:
    """A minimal PNG (8-bit RGBA, no interlace, filter 0 on every row)."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def render_all() -> dict:
    """File name -> PNG bytes for every icon."""
    return {name: encode_png(draw(size, background)) for name, (size, background) in ICONS.items()}


def main() -> int:
    static = Path(__file__).resolve().parent.parent / "static"
    static.mkdir(exist_ok=True)
    for name, data in render_all().items():
        (static / name).write_bytes(data)
        sys.stderr.write(f"wrote static/{name} ({len(data)} bytes)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
