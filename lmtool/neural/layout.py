"""Where each parameter of a recurrent network lives in its one flat vector: names, shapes, offsets.

Layout order: ``embed``, then per layer the cell's weights (``layer{l}.U`` ...), then the output
layer's (``output.W`` unless tied, ``output.b``, and ``output.Wc``, ``output.bc`` for a class softmax).
The training network (``neural.network``) and the NumPy forward pass (``neural.forward``) read the
same vector through it.
"""

import numpy as np


ALIGN = 16
"""Each view starts on a multiple of 16 elements (64 bytes: a cache line, any SIMD width)."""


class ParameterLayout:
    """Named, shaped, aligned slices of one flat vector."""

    def __init__(self, shapes):
        self.shapes = dict(shapes)
        self.offsets = {}
        end = 0
        for name, shape in self.shapes.items():
            self.offsets[name] = end
            end += -(-int(np.prod(shape)) // ALIGN) * ALIGN
        self.size = end

    def views(self, flat):
        """{name: view of flat with its shape}."""
        if flat.shape != (self.size,):
            raise ValueError(f"flat parameters: expected {self.size} values, found {flat.shape}")
        return {n: flat[o:o + int(np.prod(s))].reshape(s) for (n, s), o in
                zip(self.shapes.items(), self.offsets.values())}


def parameter_shapes(config, cell=None):
    """{name: shape} of every parameter of ``config``, in layout order.

    ``cell``: what gives one layer's shapes (``param_shapes(I, H)``); by default the kernel module of
    ``config.cell`` (``neural.forward`` passes its NumPy cells, which need no Numba).
    """
    if cell is None:
        from .choices import CELLS

        cell = CELLS[config.cell]
    shapes = {"embed": (config.vocab_size, config.embed)}
    for l in range(config.layers):
        inputs = config.embed if l == 0 else config.hidden
        for name, shape in cell.param_shapes(inputs, config.hidden).items():
            shapes[f"layer{l}.{name}"] = shape
    for name, shape in _output_shapes(config).items():
        if not (config.tie and name == "W"):
            shapes["output." + name] = shape
    return shapes


def _output_shapes(config):
    V, H = config.vocab_size, config.hidden
    shapes = {"W": (V, H), "b": (V,)}
    if config.softmax == "class":
        shapes.update(Wc=(config.n_classes, H), bc=(config.n_classes,))
    return shapes
