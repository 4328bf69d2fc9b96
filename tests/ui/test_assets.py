"""/docs, /redoc and /ui are served from the package's own files: every script and stylesheet
they reference is a local path that answers, and none points at a CDN."""

from __future__ import annotations

import re

import pytest

from service.ui import STATIC

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def references(html: str) -> list[str]:
    return [url for url in ASSET.findall(html) if not url.startswith("#")]


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/ui/"])
def test_pages_reference_only_local_assets_that_answer(client, page):
    response = client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    urls = references(response.text)
    assert urls, "the page loads no assets?"
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"{page} loads {url} from elsewhere"
        path = url if url.startswith("/") else f"/ui/{url}"
        asset = client.get(path)
        assert asset.status_code == 200, (page, path)
        assert len(asset.content) > 100, (page, path)
    assert "cdn.jsdelivr" not in response.text and "unpkg" not in response.text


def test_the_vendored_files_are_release_files_with_their_licences(client):
    chart = client.get("/ui/vendor/chartjs/chart.umd.min.js")
    assert chart.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert b"Chart.js v4" in chart.content[:200]
    for licence, says in (
        ("chartjs/LICENSE.md", "MIT"),
        ("swagger-ui/LICENSE", "Apache License"),
        ("redoc/LICENSE", "MIT"),
    ):
        assert says in (STATIC / "vendor" / licence).read_text(), licence
    assert client.get("/ui/vendor/swagger-ui/swagger-ui.css").status_code == 200
    assert client.get("/ui").status_code == 200  # redirected to /ui/
    assert client.get("/openapi.json").json()["info"]["title"] == "cescale"


def test_the_package_ships_the_assets():
    """pyproject's package-data covers every file under static/ (so an installed wheel has
    them)."""
    import tomllib
    from fnmatch import fnmatch
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["service.ui"]
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []
