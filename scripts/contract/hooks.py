"""Schemathesis hooks for simverify: teach the generator what an image is.

The OpenAPI document says an image is `format: byte` (JSON) or `format: binary` (multipart) with an image
media type, but JSON Schema cannot say "decodable PNG/JPEG/WebP/GIF/BMP". Without this, every generated
"valid" image would be random bytes, which the server rightly refuses (422 `invalid_image`). Here valid
images are real files of random size, colour and format, so the positive-data checks exercise the model
path; negative mode still mutates them into garbage, which must be refused without a 5xx.
"""

import base64
import io
import random

import schemathesis
from hypothesis import strategies as st
from PIL import Image

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP"]


def _image(width: int, height: int, mode: str, fmt: str, seed: int) -> bytes:
    rng = random.Random(seed)
    channels = 1 if mode == "L" else 3
    pixels = bytes(rng.randrange(256) for _ in range(width * height * channels))
    out = io.BytesIO()
    Image.frombytes(mode, (width, height), pixels).save(out, format=fmt)
    return out.getvalue()


images = st.builds(
    _image,
    st.integers(1, 48),
    st.integers(1, 48),
    st.sampled_from(["L", "RGB"]),
    st.sampled_from(FORMATS),
    st.integers(0, 2**32 - 1),
)

schemathesis.openapi.format("byte", images.map(lambda data: base64.b64encode(data).decode()))
schemathesis.openapi.format("binary", images)
