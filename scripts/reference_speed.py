"""Images per second of the Python reference EfficientNet-Lite0 forward pass on this machine, the figure
the Rust network is held against: eager, channels-last and TorchScript-frozen, the best of them counted.

usage: .venv/bin/python3 scripts/reference_speed.py [SIZE=160] [THREADS=2] [SECONDS=5]
"""

import sys
import time

import torch
from efficientnet_lite_pytorch import EfficientNet


def rate(model, batch, seconds):
    with torch.inference_mode():
        for _ in range(3):
            model(batch)
        start, passes = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            model(batch)
            passes += 1
    return passes * batch.shape[0] / (time.perf_counter() - start)


def main():
    size, threads, seconds = (int(a) for a in (sys.argv[1:] + ["160", "2", "5"][len(sys.argv) - 1:])[:3])
    torch.set_num_threads(threads)
    # Random weights cost what the pretrained ones cost; the image size sets the padding.
    model = EfficientNet.from_name("efficientnet-lite0", image_size=size).eval()
    print(f"PyTorch {torch.__version__}, {threads} threads, EfficientNet-Lite0 at {size} px, {seconds} s per case")
    print(f"{'batch':>6} {'eager':>8} {'channels-last':>14} {'torchscript-frozen':>19} {'best':>8}  (images/s)")
    for n in (1, 32):
        x = torch.rand(n, 3, size, size)
        eager = rate(model, x, seconds)
        cl_model = model.to(memory_format=torch.channels_last)
        channels_last = rate(cl_model, x.to(memory_format=torch.channels_last), seconds)
        model = model.to(memory_format=torch.contiguous_format)
        with torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.trace(model, x))
        scripted = rate(frozen, x, seconds)
        print(f"{n:>6} {eager:>8.1f} {channels_last:>14.1f} {scripted:>19.1f} {max(eager, channels_last, scripted):>8.1f}")


if __name__ == "__main__":
    main()
