"""An RFC 4287 (Atom 1.0) checker for feed documents, and tests that it catches what it should."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from lxml import etree

A = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _absolute_iri(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme or ""):
        return False
    return bool(parts.netloc) if parts.scheme in ("http", "https") else bool(parts.path or parts.netloc)


def _exactly_one(parent, name: str, where: str, problems: list[str]):
    found = parent.findall(A + name)
    if len(found) != 1:
        problems.append(f"{where}: {len(found)} atom:{name}, expected exactly one")
    return found[0] if found else None


def _at_most_one(parent, names, where, problems):
    for name in names:
        if len(parent.findall(A + name)) > 1:
            problems.append(f"{where}: more than one atom:{name}")


def _check_text(element, where, problems):
    kind = element.get("type", "text")
    if kind not in ("text", "html", "xhtml"):
        problems.append(f"{where}: text construct type {kind!r}")
    if kind in ("text", "html") and len(element):
        problems.append(f"{where}: type={kind} must not contain child elements")


def _check_date(element, where, problems):
    if element is not None and not RFC3339.fullmatch((element.text or "").strip()):
        problems.append(f"{where}: {element.text!r} is not an RFC 3339 date-time")


def _check_persons(parent, where, problems):
    for person in parent.findall(A + "author") + parent.findall(A + "contributor"):
        _exactly_one(person, "name", f"{where} person", problems)


def _check_links(parent, where, problems):
    alternates = set()
    for link in parent.findall(A + "link"):
        if not _absolute_iri(link.get("href")):
            problems.append(f"{where}: link href {link.get('href')!r} is not an absolute IRI")
        if link.get("rel", "alternate") == "alternate":
            key = (link.get("type"), link.get("hreflang"))
            if key in alternates:
                problems.append(f"{where}: two alternate links with the same type and hreflang")
            alternates.add(key)


def _check_common(parent, where, problems):
    id_ = _exactly_one(parent, "id", where, problems)
    if id_ is not None and not _absolute_iri((id_.text or "").strip()):
        problems.append(f"{where}: id {id_.text!r} is not an absolute IRI")
    title = _exactly_one(parent, "title", where, problems)
    if title is not None:
        _check_text(title, f"{where} title", problems)
    _check_date(_exactly_one(parent, "updated", where, problems), f"{where} updated", problems)
    _check_persons(parent, where, problems)
    _check_links(parent, where, problems)
    for category in parent.findall(A + "category"):
        if not category.get("term"):
            problems.append(f"{where}: category without term")
    return id_


def atom_problems(body: bytes) -> list[str]:
    """Every RFC 4287 MUST (and the checks atomshop adds: absolute link IRIs) that the document breaks."""
    problems: list[str] = []
    root = etree.fromstring(body, parser=_PARSER)
    if root.tag != A + "feed":
        return [f"root element is {root.tag}, not atom:feed"]
    _check_common(root, "feed", problems)
    _at_most_one(root, ["generator", "icon", "logo", "rights", "subtitle"], "feed", problems)
    feed_has_author = bool(root.findall(A + "author"))
    ids = set()
    for index, entry in enumerate(root.findall(A + "entry")):
        where = f"entry {index}"
        id_ = _check_common(entry, where, problems)
        if id_ is not None:
            if id_.text in ids:
                problems.append(f"{where}: duplicate id {id_.text}")
            ids.add(id_.text)
        _at_most_one(entry, ["content", "published", "summary", "rights", "source"], where, problems)
        _check_date(entry.find(A + "published"), f"{where} published", problems)
        if not feed_has_author and not entry.findall(A + "author"):
            problems.append(f"{where}: no author in the entry nor the feed")
        content = entry.find(A + "content")
        links = entry.findall(A + "link")
        if content is None:
            if not [link for link in links if link.get("rel", "alternate") == "alternate"]:
                problems.append(f"{where}: neither content nor an alternate link")
        else:
            kind = content.get("type", "text")
            if content.get("src") is not None and (len(content) or (content.text or "").strip()):
                problems.append(f"{where}: content with src must be empty")
            if kind in ("text", "html") and len(content):
                problems.append(f"{where}: content type={kind} must not contain child elements")
            if kind == "xhtml" and (len(content) != 1 or content[0].tag != "{http://www.w3.org/1999/xhtml}div"):
                problems.append(f"{where}: xhtml content must be a single xhtml:div")
            base64 = kind not in ("text", "html", "xhtml") and not kind.startswith("text/") \
                and not kind.endswith(("+xml", "/xml"))
            if (content.get("src") is not None or base64) and entry.find(A + "summary") is None:
                problems.append(f"{where}: content with src or base64 content needs a summary")
    return problems


def assert_valid_atom(body: bytes) -> None:
    """Fail with the list of problems when `body` is not a valid Atom 1.0 feed document."""
    problems = atom_problems(body)
    assert not problems, "invalid Atom:\n" + "\n".join(problems)


VALID = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>tag:example.org,2026:feed</id><title>t</title><updated>2026-01-01T00:00:00Z</updated>
  <author><name>a</name></author><link rel="self" href="http://example.org/feed"/>
  <entry><id>urn:uuid:1</id><title>e</title><updated>2026-01-01T00:00:00.5+01:00</updated>
    <content type="text">{"x": 1}</content></entry>
</feed>"""


def test_the_checker_accepts_a_minimal_valid_feed():
    assert atom_problems(VALID) == []


@pytest.mark.parametrize("change, problem", [
    ((b"<title>t</title>", b""), "0 atom:title"),
    ((b"<title>e</title>", b"<title>e</title><title>f</title>"), "2 atom:title"),
    ((b"<author><name>a</name></author>", b""), "no author"),
    ((b"<author><name>a</name></author>", b"<author></author>"), "0 atom:name"),
    ((b"2026-01-01T00:00:00Z", b"2026-01-01 00:00:00"), "not an RFC 3339"),
    ((b"<id>urn:uuid:1</id>", b"<id>order-1</id>"), "not an absolute IRI"),
    ((b'href="http://example.org/feed"', b'href="/feed"'), "not an absolute IRI"),
    ((b'<content type="text">{"x": 1}</content>', b""), "neither content nor an alternate link"),
    ((b'{"x": 1}</content>', b'<b>x</b></content>'), "must not contain child elements"),
    ((b"<entry><id>urn:uuid:1</id>", b"<entry><id>urn:uuid:1</id><id>urn:uuid:2</id>"), "2 atom:id"),
])
def test_the_checker_catches_a_broken_feed(change, problem):
    broken = VALID.replace(*change, 1)
    assert broken != VALID
    assert any(problem in p for p in atom_problems(broken)), atom_problems(broken)
