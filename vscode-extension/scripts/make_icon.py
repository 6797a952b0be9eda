"""Draw the extension's 128x128 icon (media/icon.png): a balance — the consensus — held above three model dots,
on a rounded dark-blue square. Pure Python (zlib + struct), so it needs no imaging library.

Usage: python scripts/make_icon.py [OUT]
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZE = 128
SS = 4  # supersampling per axis, for smooth edges

BG_TOP = (30, 64, 110)
BG_BOTTOM = (18, 36, 66)
FG = (245, 247, 250)
DOTS = [(255, 179, 71), (102, 204, 153), (120, 170, 255)]


def _rounded_square(x: float, y: float, r: float = 24.0) -> bool:
    cx = min(max(x, r), SIZE - r)
    cy = min(max(y, r), SIZE - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _segment(x: float, y: float, ax: float, ay: float, bx: float, by: float, w: float) -> bool:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    px, py = ax + t * dx, ay + t * dy
    return (x - px) ** 2 + (y - py) ** 2 <= (w / 2) ** 2


def _pan(x: float, y: float, cx: float, top: float) -> bool:
    # A bowl: the lower half of a circle under the beam's hanging strings.
    r = 15.0
    return y >= top and (x - cx) ** 2 + (y - top) ** 2 <= r * r


def _shape(x: float, y: float) -> tuple[int, int, int] | None:
    """Colour of the foreground at (x, y), or None for background."""
    for i, colour in enumerate(DOTS):
        cx = 34 + i * 30
        if (x - cx) ** 2 + (y - 104) ** 2 <= 8.5**2:
            return colour
    strokes = [
        (64, 22, 64, 88, 6),  # post
        (46, 88, 82, 88, 6),  # foot
        (26, 34, 102, 34, 6),  # beam
        (30, 34, 20, 62, 3),  # strings, left pan
        (30, 34, 40, 62, 3),
        (98, 34, 88, 62, 3),  # strings, right pan
        (98, 34, 108, 62, 3),
    ]
    if any(_segment(x, y, *s) for s in strokes):
        return FG
    if (x - 64) ** 2 + (y - 22) ** 2 <= 6.5**2:
        return FG
    if _pan(x, y, 30, 62) or _pan(x, y, 98, 62):
        return FG
    return None


def render() -> bytes:
    rows = []
    for py in range(SIZE):
        row = bytearray([0])  # PNG filter type: none
        for px in range(SIZE):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(SS):
                for sx in range(SS):
                    x = px + (sx + 0.5) / SS
                    y = py + (sy + 0.5) / SS
                    if not _rounded_square(x, y):
                        continue
                    t = y / SIZE
                    bg = tuple(BG_TOP[k] * (1 - t) + BG_BOTTOM[k] * t for k in range(3))
                    colour = _shape(x, y) or bg
                    for k in range(3):
                        acc[k] += colour[k]
                    acc[3] += 255
            n = SS * SS
            alpha = acc[3] / n
            cover = acc[3] / 255 or 1
            row += bytes(round(acc[k] / cover) for k in range(3)) + bytes([round(alpha)])
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "media" / "icon.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render())
