"""The slidestream Python SDK and the ``slidestream`` command-line client."""

from importlib.metadata import version as _version

__version__ = _version("slidestream-client")
