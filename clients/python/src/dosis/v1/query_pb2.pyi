import datetime

from dosis.v1 import dossier_status_pb2 as _dossier_status_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DossierFilter(_message.Message):
    __slots__ = ("phases", "statuses", "product_ids", "changed_since")
    PHASES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_SINCE_FIELD_NUMBER: _ClassVar[int]
    phases: _containers.RepeatedScalarFieldContainer[_dossier_status_pb2.StatusPhase]
    statuses: _containers.RepeatedScalarFieldContainer[_dossier_status_pb2.StatusCode]
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    changed_since: _timestamp_pb2.Timestamp
    def __init__(self, phases: _Optional[_Iterable[_Union[_dossier_status_pb2.StatusPhase, str]]] = ..., statuses: _Optional[_Iterable[_Union[_dossier_status_pb2.StatusCode, str]]] = ..., product_ids: _Optional[_Iterable[str]] = ..., changed_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDossiersRequest(_message.Message):
    __slots__ = ("enterprise_number", "page_size", "page_token", "filter")
    ENTERPRISE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    enterprise_number: str
    page_size: int
    page_token: str
    filter: DossierFilter
    def __init__(self, enterprise_number: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[_Union[DossierFilter, _Mapping]] = ...) -> None: ...

class ListDossiersResponse(_message.Message):
    __slots__ = ("dossiers", "next_page_token")
    DOSSIERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dossiers: _containers.RepeatedCompositeFieldContainer[_dossier_status_pb2.DossierStatus]
    next_page_token: str
    def __init__(self, dossiers: _Optional[_Iterable[_Union[_dossier_status_pb2.DossierStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDossierRequest(_message.Message):
    __slots__ = ("enterprise_number", "product_id", "dossier_id", "supplier_id")
    ENTERPRISE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DOSSIER_ID_FIELD_NUMBER: _ClassVar[int]
    SUPPLIER_ID_FIELD_NUMBER: _ClassVar[int]
    enterprise_number: str
    product_id: str
    dossier_id: str
    supplier_id: str
    def __init__(self, enterprise_number: _Optional[str] = ..., product_id: _Optional[str] = ..., dossier_id: _Optional[str] = ..., supplier_id: _Optional[str] = ...) -> None: ...

class ListPublicDossiersRequest(_message.Message):
    __slots__ = ("enterprise_number", "page_size", "page_token")
    ENTERPRISE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    enterprise_number: str
    page_size: int
    page_token: str
    def __init__(self, enterprise_number: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...
