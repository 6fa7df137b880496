"""TEMPORARY dev override (delete before hand-off): hand-started servers instead of the stack."""

import pytest


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return {
        "S3_ENDPOINT": "http://127.0.0.1:29000",
        "S3_ACCESS_KEY": "devaccess",
        "S3_SECRET_KEY": "devsecret123",
        "S3_SECONDARY_ENDPOINT": "http://127.0.0.1:29100",
        "S3_SECONDARY_ACCESS_KEY": "devaccess",
        "S3_SECONDARY_SECRET_KEY": "devsecret123",
        "POSTGRES_URL": "postgresql://postgres@127.0.0.1:29200/postgres",
    }
