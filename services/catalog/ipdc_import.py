"""Import products from the IPDC instance-snapshot feed (LDES JSON pages).

The feed is a chain of pages: each lists `member` snapshots and points to the next page in
`view.relation[].node`. A product's snapshots share `isVersionOf`; the one with the newest
`generatedAtTime` wins. `gearchiveerd: true` makes the product inactive. Supplier ids are
the `uitvoerendeOverheden` IRIs, translated through an optional operator mapping
(IRI → supplier id such as VLAIO).

Pages are read from https/http URLs, or from a local folder/file, where a page's `@id` and
the relation nodes name pages by their `@id`: give the first page's file, or the folder
of a downloaded copy of the feed, and its sibling pages are found.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.store.products import ProductData

_TAGS = re.compile(r"<[^>]+>")
MAX_PAGES = 100_000


class FeedError(ValueError):
    pass


@dataclass(frozen=True)
class _Snapshot:
    version_of: str
    generated_at: datetime
    product: ProductData


def read_pages(start: str) -> Iterator[dict]:
    """Follow view.relation from the start page; each page once."""
    loader = _LocalPages(Path(start)) if not re.match(r"^https?://", start) else None
    seen: set[str] = set()
    queue = [start if loader is None else loader.first]
    while queue:
        ref = queue.pop(0)
        if ref in seen:
            continue
        if len(seen) >= MAX_PAGES:
            raise FeedError(f"more than {MAX_PAGES} pages: is the feed looping?")
        seen.add(ref)
        page = _fetch_json(ref) if loader is None else loader.page(ref)
        seen.add(page.get("@id", ref))
        yield page
        for relation in (page.get("view") or {}).get("relation") or []:
            node = relation.get("node")
            if node and node not in seen:
                queue.append(node)


class _LocalPages:
    def __init__(self, path: Path):
        if not path.exists():
            raise FeedError(f"{path} does not exist")
        folder = path if path.is_dir() else path.parent
        files = sorted(folder.glob("*.json"))
        if not files:
            raise FeedError(f"no .json pages in {path}")
        self._by_id: dict[str, dict] = {}
        for file in files:
            page = json.loads(file.read_text(encoding="utf-8"))
            if isinstance(page, dict) and ("member" in page or "view" in page):  # skip non-page JSON
                self._by_id[page.get("@id") or str(file)] = page
        first = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        self.first = (first or {}).get("@id") or self._start_of_chain()

    def _start_of_chain(self) -> str:
        pointed = {
            r.get("node") for p in self._by_id.values() for r in (p.get("view") or {}).get("relation") or []
        }
        starts = [pid for pid in self._by_id if pid not in pointed]
        if not starts:
            raise FeedError("the pages form a loop: no first page")
        return sorted(starts)[0]

    def page(self, ref: str) -> dict:
        if ref not in self._by_id:
            raise FeedError(f"page {ref} is not in the local folder")
        return self._by_id[ref]


def _fetch_json(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/ld+json, application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - operator-given feed URL
        return json.load(response)


def _text(value) -> str:
    if isinstance(value, dict):
        value = value.get("nl") or next(iter(value.values()), "")
    return " ".join(_TAGS.sub(" ", str(value or "")).split())


def _snapshot(member: dict, mapping: dict[str, str]) -> _Snapshot:
    version_of = member.get("isVersionOf")
    generated = member.get("generatedAtTime")
    if not version_of or not generated:
        raise FeedError(f"member {member.get('@id')} lacks isVersionOf or generatedAtTime")
    product_id = str(member.get("productId") or version_of.rstrip("/").rsplit("/", 1)[-1])
    authorities = member.get("bevoegdeOverheden") or []
    suppliers = [mapping.get(iri, iri) for iri in member.get("uitvoerendeOverheden") or []]
    return _Snapshot(
        version_of=version_of,
        generated_at=datetime.fromisoformat(generated.replace("Z", "+00:00")),
        product=ProductData(
            id=product_id,
            name=_text(member.get("titel")),
            description=_text(member.get("beschrijving")),
            competent_authority=authorities[0] if authorities else "",
            supplier_ids=tuple(dict.fromkeys(suppliers)),
            active=not bool(member.get("gearchiveerd")),
            url=version_of,
        ),
    )


def products_from_feed(start: str, mapping: dict[str, str] | None = None) -> list[ProductData]:
    """The newest snapshot of every product in the feed, ordered by product id."""
    newest: dict[str, _Snapshot] = {}
    for page in read_pages(start):
        for member in page.get("member") or []:
            snap = _snapshot(member, mapping or {})
            current = newest.get(snap.version_of)
            if current is None or snap.generated_at >= current.generated_at:
                newest[snap.version_of] = snap
    return sorted((s.product for s in newest.values()), key=lambda p: p.id)


def load_mapping(path: str | None) -> dict[str, str]:
    """The operator's JSON object {authority IRI: supplier id}."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise FeedError(f"{path} must be a JSON object of IRI → supplier id strings")
    return data
