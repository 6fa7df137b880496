"""Triton's ``config.pbtxt``: generated for a TorchScript push, checked against the card for a
pushed Triton directory (the platform sends what the card declares; Triton enforces the config).

Field names of the problems are ``config.<field>`` and ``config.input.<name>.<field>``,
``config.output.<name>.<field>`` for tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import text_format  # type: ignore[import-untyped]  # no stubs locked
from tritonclient.grpc import model_config_pb2

from slidestream_contracts.model_card import ModelCardV1, ModelOutputV1, OutputKind
from slidestream_modelrepo.problems import FieldProblem, ModelPackageError

CONFIG_FILE = "config.pbtxt"
INPUT_CHANNELS = 3
MAX_QUEUE_DELAY_US = 2000
"""How long Triton holds a request to fill a preferred batch: 2 ms is small beside a CPU
inference of a batch of tiles, and lets concurrent requests of one slide merge."""
PYTHON_BACKEND = "python"
VARIABLE_DIM = -1
"""Triton's "any size" in ``dims``: matches whatever the card declares."""

_TRITON_DTYPE = {"FP32": model_config_pb2.TYPE_FP32, "FP16": model_config_pb2.TYPE_FP16}


def render_config(card: ModelCardV1, *, gpus: int) -> str:
    """The ``config.pbtxt`` of a TorchScript push: the Python backend runs the generated
    ``model.py``; one instance on the GPU when the deployment has ``gpus > 0``, else on a CPU."""
    if gpus < 0:
        raise ValueError(f"gpus must be 0 or more, not {gpus}")
    config = model_config_pb2.ModelConfig(
        name=card.name, backend=PYTHON_BACKEND, max_batch_size=card.max_batch_size
    )
    config.version_policy.all.SetInParent()  # every pushed version is served (routes pin them)
    config.input.add(
        name=card.input.name, data_type=model_config_pb2.TYPE_FP32, dims=input_dims(card)
    )
    for output in card.outputs:
        config.output.add(
            name=output.name, data_type=_TRITON_DTYPE[output.dtype], dims=output_dims(output)
        )
    config.dynamic_batching.preferred_batch_size.extend(card.preferred_batch_sizes)
    config.dynamic_batching.max_queue_delay_microseconds = MAX_QUEUE_DELAY_US
    kind = (
        model_config_pb2.ModelInstanceGroup.KIND_GPU
        if gpus > 0
        else model_config_pb2.ModelInstanceGroup.KIND_CPU
    )
    config.instance_group.add(kind=kind, count=1)
    return str(text_format.MessageToString(config))


def parse_config(text: str) -> Any:
    """``text`` as a ``model_config_pb2.ModelConfig``; a syntax error becomes a
    :class:`ModelPackageError` naming the line."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ModelPackageError([FieldProblem(CONFIG_FILE, str(error))]) from error
    return config


def input_dims(card: ModelCardV1) -> list[int]:
    """The input's dims without the batch dimension (Triton adds it when batching)."""
    return [INPUT_CHANNELS, card.input.tile_size_px, card.input.tile_size_px]


def output_dims(output: ModelOutputV1) -> list[int]:
    """An output's dims without the batch dimension."""
    if output.kind is OutputKind.SEGMENTATION:
        assert output.size_px is not None  # the card requires it for segmentation
        return [output.width, output.size_px, output.size_px]
    return [output.width]


def config_problems(config: Any, card: ModelCardV1) -> list[FieldProblem]:
    """Where ``config`` (a ``ModelConfig``) contradicts ``card``: the model name, the largest
    batch, and each tensor's name, data type and dims. Empty when they agree."""
    problems = []
    if config.name and config.name != card.name:
        problems.append(
            FieldProblem(
                "config.name",
                f"is {config.name!r} but the model is pushed as {card.name!r}: change it or "
                "leave the name out (Triton then uses the directory's)",
            )
        )
    if not config.backend and not config.platform:
        problems.append(FieldProblem("config.backend", "missing: say which backend runs it"))
    if config.max_batch_size != card.max_batch_size:
        problems.append(
            FieldProblem(
                "config.max_batch_size",
                f"is {config.max_batch_size} but the card says {card.max_batch_size}: the "
                "platform sends batches of up to the card's size, Triton refuses larger ones",
            )
        )
    problems += _input_problems(config, card)
    problems += _output_problems(config, card)
    return problems


def _input_problems(config: Any, card: ModelCardV1) -> list[FieldProblem]:
    names = [tensor.name for tensor in config.input]
    if names != [card.input.name]:
        return [
            FieldProblem(
                "config.input",
                f"declares {names} but the card has one input, {card.input.name!r}",
            )
        ]
    tensor = config.input[0]
    field = f"config.input.{tensor.name}"
    return _tensor_problems(field, tensor, model_config_pb2.TYPE_FP32, input_dims(card))


def _output_problems(config: Any, card: ModelCardV1) -> list[FieldProblem]:
    declared = {tensor.name: tensor for tensor in config.output}
    problems = []
    for output in card.outputs:
        field = f"config.output.{output.name}"
        tensor = declared.pop(output.name, None)
        if tensor is None:
            problems.append(FieldProblem(field, "missing: the card declares this output"))
            continue
        expected_type = _TRITON_DTYPE[output.dtype]
        problems += _tensor_problems(field, tensor, expected_type, output_dims(output))
    for name in declared:
        problems.append(
            FieldProblem(f"config.output.{name}", "not in the card: declare it or remove it")
        )
    return problems


def _tensor_problems(
    field: str, tensor: Any, expected_type: int, expected_dims: Sequence[int]
) -> list[FieldProblem]:
    problems = []
    if tensor.data_type != expected_type:
        problems.append(
            FieldProblem(
                f"{field}.data_type",
                f"is {_type_name(tensor.data_type)} but the card needs {_type_name(expected_type)}",
            )
        )
    dims = list(tensor.dims)
    agrees = len(dims) == len(expected_dims) and all(
        got in {want, VARIABLE_DIM} for got, want in zip(dims, expected_dims, strict=True)
    )
    if not agrees:
        problems.append(
            FieldProblem(
                f"{field}.dims",
                f"is {dims} but the card needs {list(expected_dims)} (without the batch "
                "dimension, which max_batch_size adds)",
            )
        )
    return problems


def _type_name(data_type: int) -> str:
    return str(model_config_pb2.DataType.Name(data_type))
