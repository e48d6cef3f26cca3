"""Writes the load test's request: the multipart/form-data body of one POST /compare carrying two
28x28 PNG digits from the MNIST IDX files or, when a model and two image files are given, those two
files and a `model` field (standard library only).

Usage: bench_inputs.py DATA_DIR OUT_DIR BOUNDARY [MODEL IMAGE_A IMAGE_B]
Writes OUT_DIR/compare.body.
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


def part(boundary: str, name: str, body: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n"
    return head.encode() + body + b"\r\n"


def digits(data: Path) -> tuple[bytes, bytes]:
    images, labels, rows, cols = read_idx(data)
    # Two different samples of one digit: a realistic "same thing" request.
    first, second = [i for i, label in enumerate(labels) if label == 7][:2]
    return png(images[first], cols, rows), png(images[second], cols, rows)


def main(args: list[str]) -> None:
    if len(args) not in (3, 6):
        sys.exit(__doc__)
    data, out, boundary = Path(args[0]), Path(args[1]), args[2]
    if len(args) == 6:
        model = [part(boundary, "model", args[3].encode())]
        a, b = Path(args[4]).read_bytes(), Path(args[5]).read_bytes()
    else:
        model = []
        a, b = digits(data)
    parts = model + [part(boundary, "image_a", a, "a"), part(boundary, "image_b", b, "b")]
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.body").write_bytes(b"".join(parts) + f"--{boundary}--\r\n".encode())


if __name__ == "__main__":
    main(sys.argv[1:])
