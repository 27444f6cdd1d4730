#!/usr/bin/env python3
"""Draw the alert action's icon, appserver/static/teredo_attack_context.png (48x48 RGBA), stdlib only.

A shield-blue rounded square with a white tunnel arch and an orange spike: Teredo tunnel, spike.
    python3 tools/gen_alert_icon.py
"""
import os
import struct
import sys
import zlib

SIZE = 48
BLUE = (24, 86, 160, 255)
WHITE = (255, 255, 255, 255)
ORANGE = (245, 130, 32, 255)
CLEAR = (0, 0, 0, 0)


def pixel(x: int, y: int) -> tuple:
    cx, cy = x + 0.5, y + 0.5
    # Rounded square, corner radius 8.
    r = 8
    dx = max(r - cx, 0, cx - (SIZE - r))
    dy = max(r - cy, 0, cy - (SIZE - r))
    if dx * dx + dy * dy > r * r:
        return CLEAR
    # Spike: a triangle from (30, 40) up to (36, 8) and down to (42, 40).
    if 8 <= cy <= 40:
        half_width = 6 * (cy - 8) / 32
        if abs(cx - 36) <= half_width:
            return ORANGE
    # Tunnel: an arch (ring between radii 10 and 14) centred at (18, 36), upper half, plus its legs.
    d2 = (cx - 18) ** 2 + (cy - 36) ** 2
    if cy <= 36 and 100 <= d2 <= 196:
        return WHITE
    if 36 < cy <= 40 and (4 <= cx <= 8 or 28 <= cx <= 32):
        return WHITE
    return BLUE


def png(width: int, height: int, rows: list) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def main() -> int:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "appserver", "static",
                       "teredo_attack_context.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(png(SIZE, SIZE, [[pixel(x, y) for x in range(SIZE)] for y in range(SIZE)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
