"""Pagination of the three surfaces, as pure functions over what a page returned.

- v2: a ``Link`` header whose entries each end in ``", "``, so the header ends in a comma
  (HTTP parsers trim the final space); pages are numbered.
- FHIR: ``Bundle.link`` with ``relation == "next"``, an absolute URL.
- portal: ``{"items", "page", "pageSize", "totalItems", "totalPages"}``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel\s*=\s*"?([A-Za-z]+)"?')


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map ``rel`` to URL; tolerant of the v2 trailing comma and of empty entries."""
    if not value:
        return {}
    links: dict[str, str] = {}
    for part in value.split(","):
        match = _LINK.search(part)
        if match:
            links.setdefault(match.group(2).lower(), match.group(1))
    return links


def v2_next(link_header: str | None) -> str | None:
    """The next page's URL of a v2 list, or None on the last page."""
    return parse_link_header(link_header).get("next")


def _page_of(url: str) -> tuple[tuple[str, str, str, str], list[tuple[str, str]], int] | None:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    pages = [v for k, v in query if k == "page"]
    if len(pages) != 1 or not pages[0].isdigit():
        return None
    rest = [(k, v) for k, v in query if k != "page"]
    return (parts.scheme, parts.netloc, parts.path, parts.fragment), rest, int(pages[0])


def numbered_pages(next_url: str, last_url: str | None) -> list[str]:
    """The URLs of pages ``next``..``last`` of a v2 list, when the two links differ only in
    their ``page`` number (the upstream's numbered pages); empty otherwise (follow ``next``)."""
    if last_url is None:
        return []
    first, last = _page_of(next_url), _page_of(last_url)
    if first is None or last is None or first[:2] != last[:2] or last[2] < first[2]:
        return []
    (scheme, netloc, path, fragment), rest, start = first
    return [
        urlunsplit((scheme, netloc, path, urlencode([*rest, ("page", str(n))]), fragment))
        for n in range(start, last[2] + 1)
    ]


def fhir_next(bundle: dict[str, Any]) -> str | None:
    """The next page's URL of a FHIR searchset Bundle, or None."""
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def portal_next(page: dict[str, Any]) -> int | None:
    """The next page number of a portal list, or None on the last page."""
    number, total = page.get("page"), page.get("totalPages")
    if isinstance(number, int) and isinstance(total, int) and number < total:
        return number + 1
    return None
