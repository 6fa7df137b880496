"""render_config, parse_config and config_problems, checked with Triton's own protobuf."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo import (
    FieldProblem,
    ModelPackageError,
    config_problems,
    parse_config,
    render_config,
)


def triton_parse(text: str) -> Any:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    return config


def test_rendered_config_is_what_triton_reads(card: ModelCardV1) -> None:
    config = triton_parse(render_config(card, gpus=0))
    assert (config.name, config.backend, config.max_batch_size) == ("tissue", "python", 16)
    assert config.version_policy.WhichOneof("policy_choice") == "all"
    (tensor,) = config.input
    assert (tensor.name, tensor.data_type, list(tensor.dims)) == (
        "INPUT",
        model_config_pb2.TYPE_FP32,
        [3, 64, 64],
    )
    outputs = [(t.name, t.data_type, list(t.dims)) for t in config.output]
    assert outputs == [
        ("probabilities", model_config_pb2.TYPE_FP32, [3]),
        ("embedding", model_config_pb2.TYPE_FP16, [16]),
        ("segmentation", model_config_pb2.TYPE_FP32, [2, 8, 8]),
    ]
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    (group,) = config.instance_group
    assert (group.kind, group.count) == (model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)


def test_gpus_make_a_gpu_instance(card: ModelCardV1) -> None:
    (group,) = triton_parse(render_config(card, gpus=2)).instance_group
    assert (group.kind, group.count) == (model_config_pb2.ModelInstanceGroup.KIND_GPU, 1)


def test_negative_gpus_are_refused(card: ModelCardV1) -> None:
    with pytest.raises(ValueError, match="gpus"):
        render_config(card, gpus=-1)


def test_render_parse_round_trip_agrees_with_the_card(card: ModelCardV1) -> None:
    text = render_config(card, gpus=0)
    config = parse_config(text)
    assert config == triton_parse(text)
    assert config_problems(config, card) == []


def test_parse_error_names_the_line() -> None:
    with pytest.raises(ModelPackageError) as caught:
        parse_config('name: "x"\nmax_batch_size: "many"\n')
    (problem,) = caught.value.problems
    assert problem.field == "config.pbtxt"
    assert problem.message.startswith("2:")


def problems_after(card: ModelCardV1, edit: str) -> dict[str, str]:
    """The problems of the card's own config with ``edit`` (text format) merged over it."""
    config = parse_config(render_config(card, gpus=0))
    text_format.Merge(edit, config)
    return {problem.field: problem.message for problem in config_problems(config, card)}


def test_other_name(card: ModelCardV1) -> None:
    problems = problems_after(card, 'name: "other"')
    assert list(problems) == ["config.name"]
    assert "'other'" in problems["config.name"]


def test_name_may_be_left_out(card: ModelCardV1) -> None:
    config = parse_config(render_config(card, gpus=0))
    config.ClearField("name")
    assert config_problems(config, card) == []


def test_no_backend(card: ModelCardV1) -> None:
    config = parse_config(render_config(card, gpus=0))
    config.ClearField("backend")
    assert config_problems(config, card) == [
        FieldProblem("config.backend", "missing: say which backend runs it")
    ]


@pytest.mark.parametrize("max_batch_size", [0, 8, 32])
def test_max_batch_size_differs(card: ModelCardV1, max_batch_size: int) -> None:
    problems = problems_after(card, f"max_batch_size: {max_batch_size}")
    assert list(problems) == ["config.max_batch_size"]
    assert problems["config.max_batch_size"].startswith(f"is {max_batch_size} but the card says 16")


def test_input_dims_and_type(card: ModelCardV1) -> None:
    config = parse_config(render_config(card, gpus=0))
    config.input[0].data_type = model_config_pb2.TYPE_UINT8
    config.input[0].ClearField("dims")
    config.input[0].dims.extend([224, 224, 3])
    problems = {p.field: p.message for p in config_problems(config, card)}
    assert problems == {
        "config.input.INPUT.data_type": "is TYPE_UINT8 but the card needs TYPE_FP32",
        "config.input.INPUT.dims": "is [224, 224, 3] but the card needs [3, 64, 64] (without "
        "the batch dimension, which max_batch_size adds)",
    }


def test_variable_dims_match(card: ModelCardV1) -> None:
    config = parse_config(render_config(card, gpus=0))
    config.input[0].ClearField("dims")
    config.input[0].dims.extend([3, -1, -1])
    assert config_problems(config, card) == []


def test_input_name_differs(card: ModelCardV1) -> None:
    config = parse_config(render_config(card, gpus=0))
    config.input[0].name = "image"
    problems = {p.field: p.message for p in config_problems(config, card)}
    assert problems == {
        "config.input": "declares ['image'] but the card has one input, 'INPUT'",
    }


def test_output_mismatches(card: ModelCardV1) -> None:
    config = parse_config(render_config(card, gpus=0))
    config.output[0].ClearField("dims")
    config.output[0].dims.append(4)
    config.output[1].data_type = model_config_pb2.TYPE_FP32
    config.output[2].name = "mask"
    problems = {p.field: p.message for p in config_problems(config, card)}
    assert problems == {
        "config.output.probabilities.dims": "is [4] but the card needs [3] (without the batch "
        "dimension, which max_batch_size adds)",
        "config.output.embedding.data_type": "is TYPE_FP32 but the card needs TYPE_FP16",
        "config.output.segmentation": "missing: the card declares this output",
        "config.output.mask": "not in the card: declare it or remove it",
    }
