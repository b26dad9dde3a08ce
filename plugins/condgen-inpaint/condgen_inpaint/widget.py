"""The ``inpaint`` conditioner's input on the demo page (``condgen demo``): an image to upload, with a mask
painted over it by hand or picked by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image

import condgen

#: The choice of mask that takes the strokes painted over the image.
DRAWN = "painted by hand (brush over what is missing)"
#: The named mask picked when the page opens, where the run was trained with it.
DEFAULT_MASK = "bottom-half"


def brush_radius(height: int, width: int) -> int:
    """The brush's radius in pixels when the page opens: a twelfth of the model's image (2 for 28x28), where
    Gradio's own default of 25 would paint all of a small image in one stroke."""
    return max(1, round(min(height, width) / 12))


def _opaque(array: np.ndarray) -> Image.Image:
    """An uploaded image as RGB, any transparency laid over black (the background of MNIST-like digits)."""
    image = Image.fromarray(np.asarray(array).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
    return image.convert("RGB")


class InpaintWidget(condgen.Widget):
    """An image editor (upload, then paint over the missing part) and a choice of mask: the painted strokes, or
    one of the masks the run was trained with (``bottom-half``, ``quadrants:2``, ...). The image is resized to
    the model's size; the model fills in the missing pixels, and the observed ones come back unchanged."""

    conditioner = "inpaint"

    def masks(self) -> list[str]:
        """The choices of mask: the painted strokes, then the run's training masks by name."""
        return [DRAWN, *dict.fromkeys(self.cond.config.masks)]

    def build(self, gr: ModuleType) -> Sequence[Any]:
        masks = self.masks()
        channels, height, width = self.cond.image_shape
        radius = brush_radius(height, width)
        editor = gr.ImageEditor(label=f"{self.label}: the image to complete ({height}x{width} "
                                f"{'grey' if channels == 1 else 'colour'}; a larger one is resized, and the "
                                "brush's size is in the toolbar)",
                                type="numpy", image_mode="RGBA", sources=["upload", "clipboard"],
                                elem_id=f"condition-{self.cond.name}-image", layers=False,
                                brush=gr.Brush(default_size=radius),
                                eraser=gr.Eraser(default_size=radius),
                                format="png")  # lossless: the observed pixels are the image's own
        choice = gr.Dropdown(masks, value=DEFAULT_MASK if DEFAULT_MASK in masks else masks[0],
                             label=f"{self.label}: what is missing", elem_id=f"condition-{self.cond.name}-mask")
        return [editor, choice]

    def value(self, editor: Any, mask: Any) -> Any:
        background = editor.get("background") if isinstance(editor, Mapping) else editor
        if background is None:
            raise condgen.ConditionError(f"upload an image for {self.cond.name!r} to complete")
        channels, height, width = self.cond.image_shape
        image = _opaque(background).resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image.convert("L") if channels == 1 else image, dtype=np.float32) / 255.0
        x = torch.from_numpy(pixels).reshape(height, width, -1).permute(2, 0, 1).contiguous()
        if mask != DRAWN:
            return {"image": x, "mask": mask}  # a name the conditioner knows, or its one-line error
        strokes = [layer for layer in (editor.get("layers") or []) if layer is not None]
        painted = np.zeros(np.asarray(background).shape[:2], dtype=bool)
        for layer in strokes:
            layer = np.asarray(layer)
            if layer.shape[:2] == painted.shape:
                painted |= (layer[..., 3] > 0) if layer.ndim == 3 and layer.shape[2] == 4 else layer.any(-1)
        if not painted.any():
            raise condgen.ConditionError("paint over the part of the image that is missing, or pick a mask by name")
        small = Image.fromarray(painted.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
        return {"image": x, "mask": torch.from_numpy(np.asarray(small) < 128).float()}  # 1 = observed
