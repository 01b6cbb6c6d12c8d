"""Swagger UI works on a network that blocks CDNs: every file it needs comes from the app."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.anyio

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
async def test_the_api_docs_load_nothing_from_another_host(client, page):
    response = await client.get(page)
    assert response.status_code == 200
    assert "SwaggerUIBundle" in response.text
    assets = ASSET.findall(response.text)
    assert len(assets) >= 4, assets  # the bundle, its preset, its style sheet, the icon
    assert not re.search(r"https?:|//", response.text.split("<body", 1)[0]), "a foreign host"
    for asset in assets:
        assert asset.startswith("/schema/"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 500, asset
    kinds = {(await client.get(asset)).headers["content-type"].split(";")[0] for asset in assets}
    assert {"text/css", "image/png"} <= kinds
    assert kinds & {"text/javascript", "application/javascript"}


async def test_the_swagger_files_are_public(client):
    response = await client.get("/schema/swagger-ui/swagger-ui-bundle.js")
    assert response.status_code == 200
