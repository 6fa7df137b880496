"""Triton from the devstack loads a torch Python-backend model from the ``models`` bucket
(its S3 repository, explicit model control) and serves it through gRPC."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from tests.support.stack import object_store

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
def model_in_bucket(stack_env: dict[str, str]) -> Iterator[list[str]]:
    """The model's files in the models bucket, in Triton's repository layout."""
    bucket = stack_env["MODELS_BUCKET"]
    files = {f"{MODEL_NAME}/config.pbtxt": CONFIG_PBTXT, f"{MODEL_NAME}/1/model.py": MODEL_PY}
    store = object_store(stack_env)
    for key, text in files.items():
        data = text.encode("utf-8")
        store.put_stream(bucket, key, io.BytesIO(data), len(data))
    yield list(files)
    for key in files:
        store.delete(bucket, key)


def test_the_model_repository_is_the_models_bucket(stack_env: dict[str, str]) -> None:
    # Triton's form for an S3 server other than AWS: s3://http://host:port/bucket.
    endpoint = stack_env["S3_ENDPOINT"]
    assert stack_env["TRITON_MODEL_REPOSITORY"] == f"s3://{endpoint}/{stack_env['MODELS_BUCKET']}"


def test_torch_python_model_loads_from_the_bucket_infers_and_unloads(
    stack_env: dict[str, str], model_in_bucket: list[str]
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
