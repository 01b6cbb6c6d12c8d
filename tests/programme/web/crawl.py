"""Every page a signed-in person can reach by following links, as a browser would.

``crawl`` starts at the home page and follows every same-site link (and sends
every GET form with the values it shows, or ones the caller gives) until
nothing new is found or ``limit`` pages were read. It never sends a POST form
on its own: a crawl must not change what it reads. A caller may name POST
forms that only search (``searches``), sent with the values it gives.

Written once for every role's pages: the victim-leak crawl (issue 12) and
the victim workers', monitors' and admins' pages (issue 14) call it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from tests.programme.web.helpers import csrf_from

SKIPPED_PREFIXES = ("/static/", "/schema")
"""Files and the API's documentation are not pages."""


@dataclass
class _Form:
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[_Form] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        elif tag == "form":
            self.forms.append(_Form(values.get("method", "get").lower(), values.get("action", "")))
        elif tag in ("input", "select", "textarea") and self.forms and values.get("name"):
            kind = values.get("type", "text")
            if kind in ("radio", "checkbox") and "checked" not in values:
                return
            self.forms[-1].fields.setdefault(values["name"], values.get("value", ""))
            self._select = values["name"] if tag == "select" else None
        elif tag == "option" and self.forms and self._select:
            # A browser sends a list's selected option, or its first.
            name = self._select
            if "selected" in values or not self.forms[-1].fields.get(name):
                self.forms[-1].fields[name] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


@dataclass
class Crawled:
    """The pages read: address (path and query) to the answer."""

    pages: dict[str, httpx.Response]
    refused: dict[str, int]
    """Links a page offered that answered 4xx: a page should not offer them."""


def _local(base: str, href: str) -> str | None:
    absolute = urljoin(base, href)
    parts = urlsplit(absolute)
    if parts.netloc and parts.netloc != urlsplit(base).netloc:
        return None
    if parts.scheme not in ("http", "https", ""):
        return None
    if not parts.path.startswith("/") or parts.path.startswith(SKIPPED_PREFIXES):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def crawl(
    http: httpx.AsyncClient,
    *,
    start: str = "/",
    limit: int = 500,
    fill: Mapping[str, str] | None = None,
    searches: Mapping[str, Mapping[str, str]] | None = None,
    skip: Callable[[str], bool] = lambda address: False,
) -> Crawled:
    """Read every page reachable from ``start`` with ``http``'s session.

    ``fill`` gives values for GET forms' fields by name; ``searches`` maps the
    action of a POST form that only searches to the values to send with it;
    ``skip`` leaves out addresses a role may reach but the caller checks elsewhere.
    """
    base = str(http.base_url)
    queue: deque[str] = deque([start])
    seen = {start}
    pages: dict[str, httpx.Response] = {}
    refused: dict[str, int] = {}
    searched: set[str] = set()

    def offer(address: str | None) -> None:
        if address and address not in seen and not skip(address):
            seen.add(address)
            queue.append(address)

    while queue and len(pages) < limit:
        address = queue.popleft()
        response = await http.get(address)
        assert response.status_code < 500, (address, response.status_code)
        if response.status_code in (301, 302, 303, 307, 308):
            offer(_local(base, response.headers["location"]))
            continue
        if response.status_code >= 400:
            refused[address] = response.status_code
            continue
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        pages[address] = response
        found = _Links()
        found.feed(response.text)
        for href in found.links:
            offer(_local(base, href.split("#")[0] or address))
        for form in found.forms:
            action = _local(base, form.action or address)
            if action is None:
                continue
            if form.method == "get":
                values = {k: (fill or {}).get(k, v) for k, v in form.fields.items()}
                offer(action.split("?")[0] + ("?" + urlencode(values) if values else ""))
            elif searches and action in searches and action not in searched:
                searched.add(action)
                data = {"_csrf_token": csrf_from(response.text), **searches[action]}
                answer = await http.post(action, data=data)
                assert answer.status_code < 500, (action, answer.status_code)
                pages[f"POST {action}"] = answer
    return Crawled(pages, refused)


def leaks(crawled: Crawled, markers: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each (address, marker) where a marker appears in a page's body."""
    return [
        (address, marker)
        for address, response in crawled.pages.items()
        for marker in markers
        if marker.lower() in response.text.lower()
    ]
