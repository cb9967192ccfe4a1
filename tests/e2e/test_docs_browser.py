"""/docs renders in a real browser with no network beyond the service: headless Chromium loads
the page, runs Swagger UI from the same-origin files, and every operation is drawn — with no
Content-Security-Policy violation reported on the console.

Skipped, with the reason shown, where no Chromium is installed (``apt-get install chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelfaucet.config import Settings
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, LiveServer, start_live_server

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium installed (apt-get install -y chromium): /docs was not rendered in a browser")


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[LiveServer]:
    database_url = f"sqlite:///{tmp_path / 'docs.sqlite3'}"
    settings = Settings(database_url=database_url, admin_token=ADMIN_TOKEN, gateway_service_token=GATEWAY_TOKEN)
    server = start_live_server(settings, tmp_path)
    yield server
    server.stop()


def render(chromium: str, url: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace sandbox
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",  # let the scripts run and fetch the document
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_swagger_ui_renders_every_operation_of_the_openapi_document_offline(
    docs_server: LiveServer, tmp_path: Path
) -> None:
    chromium = browser()
    document = httpx.get(f"{docs_server.base_url}/openapi.json").json()
    operations = sorted(
        (method, path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    )
    result = render(chromium, f"{docs_server.base_url}/docs", tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = re.findall(r'class="opblock opblock-(\w+)[^"]*".*?data-path="([^"]+)"', result.stdout)
    assert sorted(rendered) == operations
    assert "Content Security Policy" not in result.stderr, "the page broke its own CSP"
