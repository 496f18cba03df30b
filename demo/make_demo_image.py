"""Draw the embedded demo image: a 400×300 scene of a few coloured shapes on a textured background.

400×300 is the size the project's seed notes walk through (→ 384×288 → 18×24 = 432 patches
→ 108 merged tokens). Run once; the PNG ships in the package as qwen3vl_inspect/assets/demo.png.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parents[1] / "qwen3vl_inspect" / "assets" / "demo.png"


def draw(seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    # soft vertical gradient (sky to grass) with fine noise, so patches are never uniform
    rows = np.linspace(0, 1, 300)[:, None, None]
    top, bottom = np.array([170, 200, 235]), np.array([120, 165, 95])
    base = top * (1 - rows) + bottom * rows + rng.normal(0, 6, (300, 400, 3))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    pen = ImageDraw.Draw(image)
    pen.ellipse((40, 40, 150, 150), fill=(220, 60, 50), outline=(120, 20, 20), width=3)  # red disc
    pen.rectangle((230, 60, 360, 170), fill=(40, 90, 200), outline=(10, 30, 90), width=3)  # blue square
    pen.polygon([(120, 270), (200, 150), (280, 270)], fill=(245, 200, 40), outline=(140, 100, 0))  # yellow triangle
    pen.ellipse((300, 200, 380, 280), fill=(60, 170, 80), outline=(20, 80, 30), width=3)  # green disc
    return image


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
