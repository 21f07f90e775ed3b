"""CatalogService: products, the supplier check and the status code list."""

from __future__ import annotations

from dosis.v1 import catalog_pb2, catalog_pb2_grpc
from services.common import errors, labels, page_tokens
from services.common.auth import Policy
from services.common.calls import change_event, change_recorded
from services.common.errors import Violation
from services.common.rules import PRODUCT_ID, PRODUCT_ID_FORM
from services.common.timestamps import to_message
from services.store.products import CatalogStore, ProductData, ProductRow

POLICIES = {
    "GetProduct": Policy.ANY,
    "ListProducts": Policy.ANY,
    "UpsertProduct": Policy.CATALOG_ADMIN,
    "CheckProduct": Policy.ANY,
    "ListStatusCodes": Policy.ANY,
}


def _after_id(position: dict) -> str:
    if not isinstance(position["id"], str):
        raise TypeError("bad position")
    return position["id"]


# The product's fields that go out as they are stored.
_PRODUCT_FIELDS = ("id", "name", "description", "competent_authority", "supplier_ids", "active", "url")


def product_message(row: ProductRow) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        **{name: getattr(row, name) for name in _PRODUCT_FIELDS}, update_time=to_message(row.update_time)
    )


def validate_product(product: catalog_pb2.Product) -> ProductData:
    violations = []
    if not PRODUCT_ID.match(product.id):
        violations.append(Violation("product.id", "INVALID_PRODUCT_ID", PRODUCT_ID_FORM))
    if not product.name.strip() or len(product.name) > 500:
        violations.append(Violation("product.name", "INVALID_PRODUCT_NAME", "is required, at most 500 characters"))
    for i, supplier in enumerate(product.supplier_ids):
        if not supplier.strip() or len(supplier) > 64:
            violations.append(
                Violation(f"product.supplier_ids[{i}]", "INVALID_SUPPLIER_ID", "must be 1-64 characters")
            )
    if len(product.url) > 2048:
        violations.append(Violation("product.url", "INVALID_URL", "must be at most 2048 characters"))
    if violations:
        raise errors.invalid_argument(violations)
    return ProductData(
        id=product.id,
        name=product.name.strip(),
        description=product.description,
        competent_authority=product.competent_authority,
        supplier_ids=tuple(s.strip() for s in product.supplier_ids),
        active=product.active,
        url=product.url,
    )


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, store: CatalogStore):
        self._store = store

    async def GetProduct(self, request, context):
        errors.require(request, "id")
        row = await self._store.get(request.id)
        if row is None:
            raise errors.not_found("PRODUCT_NOT_FOUND", f"product {request.id!r} is not in the catalog")
        return product_message(row)

    async def ListProducts(self, request, context):
        size = page_tokens.page_size(request.page_size)
        query = page_tokens.fingerprint("products")
        after_id = page_tokens.decode(request.page_token, query, _after_id)
        rows = await self._store.list(after_id, size + 1)
        token = page_tokens.encode({"id": rows[size - 1].id}, query) if len(rows) > size else ""
        return catalog_pb2.ListProductsResponse(
            products=[product_message(r) for r in rows[:size]], next_page_token=token
        )

    async def UpsertProduct(self, request, context):
        event = change_event("", 1) if self._store.writes_audit else None
        row = await self._store.upsert(validate_product(request.product), event)
        if event is not None:
            change_recorded()
        return product_message(row)

    async def CheckProduct(self, request, context):
        errors.require(request, "product_id", "supplier_id")
        row = await self._store.get(request.product_id)
        if row is None:
            return catalog_pb2.CheckProductResponse(exists=False)
        return catalog_pb2.CheckProductResponse(
            exists=True, active=row.active, supplier_allowed=request.supplier_id in row.supplier_ids
        )

    async def ListStatusCodes(self, request, context):
        return catalog_pb2.ListStatusCodesResponse(
            phases=[catalog_pb2.PhaseLabel(phase=n, label=t) for n, t in labels.phase_labels().items()],
            status_codes=[catalog_pb2.StatusCodeLabel(status=n, label=t) for n, t in labels.status_labels().items()],
        )
