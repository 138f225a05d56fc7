"""Decode one WebP texture to PNG with Pillow (``python -m apps.scenes.validation.imageconv``).

Called by ``apps/scenes/node/derive.mjs`` (inside the processing sandbox) for
``EXT_texture_webp`` images; Pillow's libwebp replaces sharp there, which would need Node 20
where Debian 12 ships 18. Pillow refuses images over ``MAX_PIXELS`` before decoding them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

MAX_PIXELS = 8192 * 8192  # GltfLimits.max_image_pixels' default


def convert(src: Path, dst: Path) -> None:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # larger raises DecompressionBombError (a bomb)
    with Image.open(src) as img:
        if img.format != "WEBP":
            raise ValueError(f"expected a WebP image, got {img.format}")
        if img.width * img.height > MAX_PIXELS:
            raise ValueError(f"{img.width}x{img.height} is more pixels than allowed")
        img.convert("RGBA" if "A" in img.getbands() else "RGB").save(dst, "PNG")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m apps.scenes.validation.imageconv IN.webp OUT.png\n")
        return 2
    try:
        convert(Path(args[0]), Path(args[1]))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        sys.stderr.write(f"webp decode failed: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
