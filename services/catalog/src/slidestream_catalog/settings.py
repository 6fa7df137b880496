"""The catalog service's settings: the shared fields, its name and its HTTP port."""

from __future__ import annotations

from slidestream_platform.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    http_port: int = 8091
