"""Triton from the devstack loads and serves a torch Python-backend model through gRPC."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

pytestmark = pytest.mark.integration

MODEL_NAME = "devstack_relu_double"

MODEL_PY = textwrap.dedent(
    """
    import numpy as np
    import torch
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
                y = torch.relu(torch.from_numpy(x)) * 2
                output = pb_utils.Tensor("OUTPUT", y.numpy().astype(np.float32))
                responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
            return responses
    """
)

CONFIG_PBTXT = textwrap.dedent(
    f"""
    name: "{MODEL_NAME}"
    backend: "python"
    max_batch_size: 8
    input [{{ name: "INPUT", data_type: TYPE_FP32, dims: [ -1 ] }}]
    output [{{ name: "OUTPUT", data_type: TYPE_FP32, dims: [ -1 ] }}]
    dynamic_batching {{ max_queue_delay_microseconds: 1000 }}
    instance_group [{{ kind: KIND_CPU, count: 1 }}]
    """
)


@pytest.fixture
def model_dir(stack_env: dict[str, str]) -> Iterator[Path]:
    directory = Path(stack_env["TRITON_MODEL_REPOSITORY"]) / MODEL_NAME
    (directory / "1").mkdir(parents=True, exist_ok=True)
    (directory / "1" / "model.py").write_text(MODEL_PY, encoding="utf-8")
    (directory / "config.pbtxt").write_text(CONFIG_PBTXT, encoding="utf-8")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_torch_python_model_loads_infers_and_unloads(
    stack_env: dict[str, str], model_dir: Path
) -> None:
    client = grpcclient.InferenceServerClient(url=stack_env["TRITON_GRPC"])
    assert client.is_server_ready()

    client.load_model(MODEL_NAME)
    try:
        assert client.is_model_ready(MODEL_NAME)
        batch = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1.0, -1.0, 2.5, -7.0, 0.25]], np.float32)
        request_input = grpcclient.InferInput("INPUT", list(batch.shape), "FP32")
        request_input.set_data_from_numpy(batch)
        result = client.infer(
            MODEL_NAME, [request_input], outputs=[grpcclient.InferRequestedOutput("OUTPUT")]
        )
        output = result.as_numpy("OUTPUT")
        np.testing.assert_allclose(output, np.maximum(batch, 0.0) * 2.0)
    finally:
        client.unload_model(MODEL_NAME)
    assert not client.is_model_ready(MODEL_NAME)
