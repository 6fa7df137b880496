"""The Python-backend ``model.py`` generated for a TorchScript push.

It loads ``model.pt`` from its own version directory, on the GPU when its instance is a GPU one
and CUDA is there, concatenates the requests Triton batched into one forward pass, and splits
the outputs back per request. The module's ``forward`` takes the ``[batch, 3, S, S]`` float
tensor and returns one tensor, or a tuple of them in the card's output order.
"""

from __future__ import annotations

from importlib.resources import files
from string import Template

from slidestream_contracts.model_card import ModelCardV1

WRAPPER_FILE = "model.py"
TORCHSCRIPT_FILE = "model.pt"
_TEMPLATE_RESOURCE = "python_backend_model.py.tmpl"
_NUMPY_DTYPE = {"FP32": "float32", "FP16": "float16"}


def render_wrapper(card: ModelCardV1) -> str:
    """The wrapper's source for ``card`` (tensor names are identifiers: the card checks them)."""
    resource = files("slidestream_modelrepo").joinpath(_TEMPLATE_RESOURCE)
    template = Template(resource.read_text("utf-8"))
    return template.substitute(
        model_name=card.name,
        model_version=card.version,
        input_name=repr(card.input.name),
        output_names=repr(tuple(output.name for output in card.outputs)),
        output_dtypes=repr(tuple(_NUMPY_DTYPE[output.dtype] for output in card.outputs)),
    )
