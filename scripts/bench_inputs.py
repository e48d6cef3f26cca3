"""Writes the load test's request: two 28x28 PNG digits from the MNIST IDX files, and the
multipart/form-data body of one POST /compare carrying them (standard library only).

Usage: bench_inputs.py DATA_DIR OUT_DIR BOUNDARY
Writes OUT_DIR/a.png, OUT_DIR/b.png and OUT_DIR/compare.body.
"""
import struct
import sys
import zlib
from pathlib import Path


def read_idx(data: Path):
    raw = (data / "images.idx3-ubyte").read_bytes()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x803:
        sys.exit(f"{data}/images.idx3-ubyte is not an IDX image file")
    labels = (data / "labels.idx1-ubyte").read_bytes()[8:]
    size = rows * cols
    images = [raw[16 + i * size : 16 + (i + 1) * size] for i in range(count)]
    return images, labels, rows, cols


def png(pixels: bytes, width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # Each row starts with filter type 0 (none).
    scanlines = b"".join(b"\x00" + pixels[r * width : (r + 1) * width] for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")


def part(boundary: str, name: str, filename: str, body: bytes) -> bytes:
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    return head.encode() + body + b"\r\n"


def main(data: Path, out: Path, boundary: str) -> None:
    images, labels, rows, cols = read_idx(data)
    # Two different samples of one digit: a realistic "same thing" request.
    first, second = [i for i, label in enumerate(labels) if label == 7][:2]
    a, b = png(images[first], cols, rows), png(images[second], cols, rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.png").write_bytes(a)
    (out / "b.png").write_bytes(b)
    body = part(boundary, "image_a", "a.png", a) + part(boundary, "image_b", "b.png", b) + f"--{boundary}--\r\n".encode()
    (out / "compare.body").write_bytes(body)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
