"""Third-party files are the app's own copies, with their licences, and ask for nothing else."""

from __future__ import annotations

import re

from programme.platform.web.browser import STATIC, TEMPLATES

VENDOR = STATIC / "vendor"


def test_every_vendored_folder_keeps_its_licence() -> None:
    for folder in (VENDOR / "govuk-frontend", VENDOR / "htmx"):
        assert any(p.name.startswith("LICEN") for p in folder.iterdir()), folder


def test_the_govuk_stylesheet_uses_arial_and_loads_no_font_or_image() -> None:
    css = (VENDOR / "govuk-frontend" / "govuk-frontend.min.css").read_text()
    assert "GDS Transport" not in css  # GOV.UK services only
    assert "@font-face" not in css
    assert "arial,sans-serif" in css
    assert re.findall(r"url\((?!data:)", css) == []  # nothing fetched that we do not serve


def test_no_page_or_script_refers_to_another_site() -> None:
    """The service must work on a network with no internet: no CDN anywhere."""
    for path in [*TEMPLATES.glob("*.html"), STATIC / "init.js", STATIC / "app.css"]:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert "@import" not in text, path


def test_the_templates_carry_no_inline_script_or_style() -> None:
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert "<style" not in text and " style=" not in text, path
        assert not re.search(r"\son[a-z]+=", text), path  # no onclick= and the like
