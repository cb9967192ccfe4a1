"""/docs and /redoc load only same-origin files, so they work offline and under a strict CSP.

The browser check (``test_docs_browser.py``) renders the page in headless Chromium; these
checks need no browser.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r'(?:src|href)="([^"]*)"')
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_page_references_only_same_origin_assets_that_answer_with_their_content_type(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = [ref for ref in ASSET.findall(response.text) if ref != "data:,"]
    assert references, response.text
    assert "<script>" not in response.text, "no inline script: the CSP allows none"
    for ref in references:
        assert ref.startswith("/") and not ref.startswith("//"), f"{ref} is not same-origin"
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        expected = CONTENT_TYPES[ref[ref.rindex(".") :]]
        assert asset.headers["content-type"].startswith(expected), ref
        assert len(asset.content) > 100, ref


def test_the_docs_page_names_the_openapi_document_and_loads_swagger_ui_5(client: TestClient) -> None:
    page = client.get("/docs").text
    assert 'data-openapi-url="/openapi.json"' in page
    bundle = client.get("/docs/static/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle
    assert re.search(r'"5\.\d+\.\d+"', bundle), "Swagger UI 4 cannot render OpenAPI 3.1"


def test_the_docs_csp_allows_scripts_from_this_origin_only(client: TestClient) -> None:
    policy = client.get("/docs").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "http" not in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_an_unknown_docs_asset_is_a_404(client: TestClient) -> None:
    assert client.get("/docs/static/../../pyproject.toml").status_code == 404
    assert client.get("/docs/static/evil.js").status_code == 404
