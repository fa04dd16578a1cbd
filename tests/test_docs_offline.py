"""`/docs` and `/redoc` work with no internet: every script, stylesheet and icon they load is
served by the API itself, with its content type."""

from __future__ import annotations

import re

import pytest

from kruxt.starter.api.app import create_app
from tests.support import asgi_client

# Each attribute value on its own: no nesting, no backtracking.
_ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")
_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.mark.parametrize(("page", "expected"), [("/docs", 4), ("/redoc", 3)])
async def test_the_docs_page_loads_only_what_the_api_serves(page: str, expected: int) -> None:
    async with asgi_client(create_app()) as http:
        response = await http.get(page)
        assert response.status_code == 200
        html = response.text
        assert "http://" not in html and "https://" not in html  # no CDN, no web font
        assets = {a or b for a, b in _ASSET.findall(html)}
        # Swagger UI: its script, stylesheet, icon and the spec; ReDoc: script, icon, spec.
        assert len(assets) == expected, assets
        for url in assets:
            assert url.startswith("/"), url
            asset = await http.get(url)
            assert asset.status_code == 200, url
            kind = next(t for ext, t in _TYPES.items() if url.endswith(ext))
            assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
