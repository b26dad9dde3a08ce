"""The mask names, in a module of their own without torch: ``condgen inpaint --help`` lists them."""

#: Mask kinds that :func:`condgen_inpaint.masks.parse_mask_spec` and :class:`~condgen_inpaint.masks.MaskSpec`
#: know (``center`` is also accepted).
MASK_KINDS = ("quadrants", "top-half", "bottom-half", "left-half", "right-half", "centre", "random-rect", "dropout")
#: The halves :func:`condgen_inpaint.masks.half_mask` can hide.
HALVES = ("top", "bottom", "left", "right")
