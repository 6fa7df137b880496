"""How the local stack starts tusd: hooks to the upload service's internal port, authenticated
with the hooks secret, which no startup log prints and no forwarded header displaces."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote, urlsplit

from slidestream_contracts.tokens import basic_password
from slidestream_devstack.ports import UPLOAD_HOOKS_PORT
from slidestream_devstack.tusd import HOOKS_URL, authenticated_hooks_url, tusd_command

SECRET = "0f1e2d3c/4b5a:6978@"


def command() -> list[str]:
    argv, _env = tusd_command(
        Path("tusd"),
        host="127.0.0.1",
        port=11080,
        s3_endpoint="http://127.0.0.1:19000",
        s3_access_key="AK",
        s3_secret_key="SK",
        hooks_url=HOOKS_URL,
        hooks_secret=SECRET,
    )
    return argv


def test_the_hooks_go_to_the_internal_port_not_the_partner_api() -> None:
    parts = urlsplit(HOOKS_URL)
    assert parts.port == UPLOAD_HOOKS_PORT  # upload's internal listener, not UPLOAD_PORT
    assert parts.path == "/hooks/tusd"


def test_the_secret_rides_in_the_hook_url_as_the_basic_password_tusd_sends() -> None:
    url = urlsplit(authenticated_hooks_url(HOOKS_URL, SECRET))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", UPLOAD_HOOKS_PORT, "/hooks/tusd")
    assert url.username == "tusd" and url.password is not None
    password = unquote(url.password)
    assert password == SECRET  # percent-encoded in the URL, decoded by Go's url.Parse
    header = "Basic " + base64.b64encode(f"{url.username}:{password}".encode()).decode()
    assert basic_password(header) == SECRET


def test_tusd_prints_no_startup_log_and_forwards_no_header_when_hooks_are_on() -> None:
    argv = command()
    hooks_url = argv[argv.index("-hooks-http") + 1]
    assert urlsplit(hooks_url).username == "tusd"
    assert "-show-startup-logs=false" in argv
    # A forwarded Authorization header would replace the hook URL's credentials in Go's client.
    assert not any(arg.startswith("-hooks-http-forward-headers") for arg in argv)


def test_tusd_serves_no_download_of_an_upload() -> None:
    # tusd answers GET on an upload URL with its bytes, without asking any hook: the original,
    # PHI and all, to whoever holds the URL. The pipeline reads originals from the bucket.
    assert "-disable-download" in command()
