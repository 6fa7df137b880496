"""Models in Triton's repository layout, shared by the CLI (AI teams' machines) and the
inference service: read and check a model card, generate the Python-backend wrapper and
``config.pbtxt`` for a TorchScript file, check a pushed Triton directory against its card,
and the upload's archive format. Knows no torch: a TorchScript file is only carried.
"""

from slidestream_modelrepo.archive import pack_upload, unpack_upload
from slidestream_modelrepo.card import read_card, signature_problems
from slidestream_modelrepo.config import config_problems, parse_config, render_config
from slidestream_modelrepo.package import ModelPackage, package_directory, package_torchscript
from slidestream_modelrepo.problems import FieldProblem, ModelPackageError

__all__ = [
    "FieldProblem",
    "ModelPackage",
    "ModelPackageError",
    "config_problems",
    "pack_upload",
    "package_directory",
    "package_torchscript",
    "parse_config",
    "read_card",
    "render_config",
    "signature_problems",
    "unpack_upload",
]
