"""The IPDC sample feed's expected import result, shared by the catalog tests.

The feed is the repository's own copy of the IPDC sample (services/catalog/demo/ipdc-feed), so
these tests run on a fresh clone. Expected result: data/ipdc-ldes/README.md of the contract.
"""

from __future__ import annotations

ORG = "https://data.vlaanderen.be/id/organisatie/"
VLAIO_IRI, OMGEVING_IRI, WSE_IRI, SYNTRA_IRI, FIT_IRI = (
    ORG + "OVO000104",
    ORG + "OVO003323",
    ORG + "OVO001833",
    ORG + "OVO000062",
    ORG + "OVO000087",
)
SERVICE = "http://data.lblod.info/id/public-service/"
NO_PRODUCT_ID = "00000000-0000-0000-0000-000000000006"

# id → (name, competent authority IRI, executing authority IRI, mapped supplier id, active)
EXPECTED = {
    NO_PRODUCT_ID: ("Prospectiesteun buitenland", FIT_IRI, FIT_IRI, "FIT", True),
    "1001": ("Stopgezette ecologiepremie", VLAIO_IRI, VLAIO_IRI, "VLAIO", False),
    "1502": ("KMO-portefeuille (opleiding en advies)", VLAIO_IRI, VLAIO_IRI, "VLAIO", True),
    "1519": ("Hinderpremie", VLAIO_IRI, VLAIO_IRI, "VLAIO", True),
    "2031": (
        "Omgevingsvergunning voor ingedeelde inrichtingen",
        OMGEVING_IRI,
        OMGEVING_IRI,
        "OMGEVING",
        True,
    ),
    "3104": ("Aanwervingsincentive langdurig werkzoekenden", WSE_IRI, WSE_IRI, "WSE", True),
    "4410": ("Erkenning als onderneming voor duaal leren", SYNTRA_IRI, SYNTRA_IRI, "SYNTRA", True),
}
EXPECTED_IDS = sorted(EXPECTED)


def check_products(products, mapped: bool) -> None:
    """The import result of the sample feed, exactly."""
    assert [p.id for p in products] == EXPECTED_IDS
    for p in products:
        name, authority, executor, supplier, active = EXPECTED[p.id]
        assert p.name == name, p.id
        assert p.competent_authority == authority, p.id
        assert tuple(p.supplier_ids) == ((supplier,) if mapped else (executor,)), p.id
        assert p.active is active, p.id
    by_id = {p.id: p for p in products}
    # The newest snapshot of 1502 wins in every field, and HTML is stripped from the text.
    assert by_id["1502"].description == "Subsidie voor opleiding en advies van kmo's; nieuwe titel."
    assert by_id["1502"].url == SERVICE + "00000000-0000-0000-0000-000000000001"
    # Without productId, the id is the last path segment of isVersionOf.
    assert by_id[NO_PRODUCT_ID].url == SERVICE + NO_PRODUCT_ID
