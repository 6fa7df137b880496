"""What every token-bearing API client of the SDK shares: one httpx client with the bearer token
and the SDK's User-Agent, a ``repr`` that never shows the token, ``with`` support, and network
failures raised as :class:`~slidestream_client.errors.ApiConnectionError`."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Final, Self

import httpx

from slidestream_client import __version__
from slidestream_client.errors import ApiConnectionError

DEFAULT_TIMEOUT_S: Final = 60.0


class TokenApiClient:
    """Base of :class:`~slidestream_client.model_client.ModelsClient` and
    :class:`~slidestream_client.search_client.SearchClient`."""

    def __init__(
        self,
        api: str,
        token: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (tests)."""
        if not token:
            raise ValueError("a token is required")
        self.api = api.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"slidestream-client/{__version__}",
            },
            timeout=timeout_s,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api={self.api!r})"  # never the token

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response, whatever its status; :class:`ApiConnectionError` when there is none."""
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ApiConnectionError(f"cannot reach {self.api}: {error}") from error

    def _unreachable(self, error: httpx.TransportError) -> ApiConnectionError:
        """The error to raise when a streamed request loses the network."""
        return ApiConnectionError(f"cannot reach {self.api}: {error}")
