"""The generated Python-backend wrapper is valid Python that names the card's tensors."""

from __future__ import annotations

import ast

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo.wrapper import render_wrapper


def constants(source: str) -> dict[str, object]:
    tree = ast.parse(source)
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def test_wrapper_compiles_and_declares_the_tensors(card: ModelCardV1) -> None:
    source = render_wrapper(card)
    compile(source, "model.py", "exec")
    assert constants(source) == {
        "INPUT_NAME": "INPUT",
        "OUTPUT_NAMES": ("probabilities", "embedding", "segmentation"),
        "OUTPUT_DTYPES": ("float32", "float16", "float32"),
        "MODEL_FILE": "model.pt",
    }


def test_wrapper_defines_the_python_backend_interface(card: ModelCardV1) -> None:
    tree = ast.parse(render_wrapper(card))
    (model_class,) = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    methods = {node.name for node in model_class.body if isinstance(node, ast.FunctionDef)}
    assert model_class.name == "TritonPythonModel"
    assert {"initialize", "execute", "finalize"} <= methods
    assert "torch.inference_mode()" in ast.unparse(model_class)


def test_single_output_names_a_one_tuple(card: ModelCardV1) -> None:
    one = card.model_copy(update={"outputs": card.outputs[1:2]})
    assert constants(render_wrapper(one))["OUTPUT_NAMES"] == ("embedding",)
