"""Draw the demo scenes into demo/images/ (run once; the PNGs are committed).

    python demo/draw_scenes.py

- shapes_640x480.png: the workshop's shape exercise (640×480 → 640×480 → 30×40 patches → 300 tokens),
  four flat shapes on a plain two-tone ground, so every patch boundary is easy to reason about;
- scene_0.png, scene_1.png: held-out scenes of the kind the demo weights were trained on
  (`qwen3vl_inspect.demo_scenes`, split "eval"), with their object outlines ground truth.

The photo, Grace Hopper's portrait, is not copied: it ships with matplotlib and is read from there
(`matplotlib.cbook.get_sample_data("grace_hopper.jpg")`, or the name "grace_hopper" in the demo
script and in `qwen3vl_inspect.notebook.open_trace`).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from qwen3vl_inspect.demo_scenes import make_scene

OUT = Path(__file__).resolve().parent / "images"


def shapes_640x480() -> Image.Image:
    image = Image.new("RGB", (640, 480), (176, 196, 222))
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, 320, 640, 480), fill=(150, 180, 120))  # ground from row 20 of the patch grid down
    pen.ellipse((64, 64, 223, 223), fill=(214, 56, 48))  # 10×10 patches, corners at patch boundaries
    pen.rectangle((384, 96, 575, 255), fill=(40, 90, 200))  # exactly patches rows 6–15, cols 24–35
    pen.polygon([(224, 448), (320, 272), (416, 448)], fill=(245, 200, 40))
    pen.rectangle((512, 352, 559, 399), fill=(30, 30, 30))  # one 3×3-patch dark square
    return image


def main() -> None:
    OUT.mkdir(exist_ok=True)
    shapes_640x480().save(OUT / "shapes_640x480.png", optimize=True)
    for index in (0, 1):
        make_scene(index, "eval").image.save(OUT / f"scene_{index}.png", optimize=True)
    for path in sorted(OUT.glob("*.png")):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
