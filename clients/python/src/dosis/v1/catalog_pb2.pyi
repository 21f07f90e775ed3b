import datetime

from dosis.v1 import dossier_status_pb2 as _dossier_status_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Product(_message.Message):
    __slots__ = ("id", "name", "description", "competent_authority", "supplier_ids", "active", "url", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COMPETENT_AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    SUPPLIER_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    competent_authority: str
    supplier_ids: _containers.RepeatedScalarFieldContainer[str]
    active: bool
    url: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., competent_authority: _Optional[str] = ..., supplier_ids: _Optional[_Iterable[str]] = ..., active: bool = ..., url: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListProductsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products", "next_page_token")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    next_page_token: str
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpsertProductRequest(_message.Message):
    __slots__ = ("product",)
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    product: Product
    def __init__(self, product: _Optional[_Union[Product, _Mapping]] = ...) -> None: ...

class CheckProductRequest(_message.Message):
    __slots__ = ("product_id", "supplier_id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SUPPLIER_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    supplier_id: str
    def __init__(self, product_id: _Optional[str] = ..., supplier_id: _Optional[str] = ...) -> None: ...

class CheckProductResponse(_message.Message):
    __slots__ = ("exists", "active", "supplier_allowed")
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SUPPLIER_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    exists: bool
    active: bool
    supplier_allowed: bool
    def __init__(self, exists: bool = ..., active: bool = ..., supplier_allowed: bool = ...) -> None: ...

class ListStatusCodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PhaseLabel(_message.Message):
    __slots__ = ("phase", "label")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    phase: _dossier_status_pb2.StatusPhase
    label: str
    def __init__(self, phase: _Optional[_Union[_dossier_status_pb2.StatusPhase, str]] = ..., label: _Optional[str] = ...) -> None: ...

class StatusCodeLabel(_message.Message):
    __slots__ = ("status", "label")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    status: _dossier_status_pb2.StatusCode
    label: str
    def __init__(self, status: _Optional[_Union[_dossier_status_pb2.StatusCode, str]] = ..., label: _Optional[str] = ...) -> None: ...

class ListStatusCodesResponse(_message.Message):
    __slots__ = ("phases", "status_codes")
    PHASES_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODES_FIELD_NUMBER: _ClassVar[int]
    phases: _containers.RepeatedCompositeFieldContainer[PhaseLabel]
    status_codes: _containers.RepeatedCompositeFieldContainer[StatusCodeLabel]
    def __init__(self, phases: _Optional[_Iterable[_Union[PhaseLabel, _Mapping]]] = ..., status_codes: _Optional[_Iterable[_Union[StatusCodeLabel, _Mapping]]] = ...) -> None: ...
