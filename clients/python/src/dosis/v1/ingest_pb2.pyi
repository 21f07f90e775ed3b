from dosis.v1 import dossier_status_pb2 as _dossier_status_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_OUTCOME_UNSPECIFIED: _ClassVar[PushOutcome]
    PUSH_OUTCOME_CREATED: _ClassVar[PushOutcome]
    PUSH_OUTCOME_UPDATED: _ClassVar[PushOutcome]
    PUSH_OUTCOME_UNCHANGED: _ClassVar[PushOutcome]
    PUSH_OUTCOME_STALE: _ClassVar[PushOutcome]
    PUSH_OUTCOME_REJECTED: _ClassVar[PushOutcome]

class BatchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_MODE_UNSPECIFIED: _ClassVar[BatchMode]
    BATCH_MODE_UPSERT: _ClassVar[BatchMode]
    BATCH_MODE_REPLACE_PRODUCT: _ClassVar[BatchMode]
PUSH_OUTCOME_UNSPECIFIED: PushOutcome
PUSH_OUTCOME_CREATED: PushOutcome
PUSH_OUTCOME_UPDATED: PushOutcome
PUSH_OUTCOME_UNCHANGED: PushOutcome
PUSH_OUTCOME_STALE: PushOutcome
PUSH_OUTCOME_REJECTED: PushOutcome
BATCH_MODE_UNSPECIFIED: BatchMode
BATCH_MODE_UPSERT: BatchMode
BATCH_MODE_REPLACE_PRODUCT: BatchMode

class PushStatusRequest(_message.Message):
    __slots__ = ("status", "request_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    status: _dossier_status_pb2.DossierStatus
    request_id: str
    def __init__(self, status: _Optional[_Union[_dossier_status_pb2.DossierStatus, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class PushStatusResponse(_message.Message):
    __slots__ = ("outcome", "request_id", "error")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    outcome: PushOutcome
    request_id: str
    error: _status_pb2.Status
    def __init__(self, outcome: _Optional[_Union[PushOutcome, str]] = ..., request_id: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class UploadBatchRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: BatchHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[BatchHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class BatchHeader(_message.Message):
    __slots__ = ("mode", "product_id", "file_name", "size_bytes")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    mode: BatchMode
    product_id: str
    file_name: str
    size_bytes: int
    def __init__(self, mode: _Optional[_Union[BatchMode, str]] = ..., product_id: _Optional[str] = ..., file_name: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class RejectedRow(_message.Message):
    __slots__ = ("line", "column", "reason")
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    line: int
    column: str
    reason: str
    def __init__(self, line: _Optional[int] = ..., column: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class BatchReport(_message.Message):
    __slots__ = ("rows_read", "created", "updated", "unchanged", "stale", "rejected", "deleted", "rejected_rows")
    ROWS_READ_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_ROWS_FIELD_NUMBER: _ClassVar[int]
    rows_read: int
    created: int
    updated: int
    unchanged: int
    stale: int
    rejected: int
    deleted: int
    rejected_rows: _containers.RepeatedCompositeFieldContainer[RejectedRow]
    def __init__(self, rows_read: _Optional[int] = ..., created: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., stale: _Optional[int] = ..., rejected: _Optional[int] = ..., deleted: _Optional[int] = ..., rejected_rows: _Optional[_Iterable[_Union[RejectedRow, _Mapping]]] = ...) -> None: ...

class DeleteDossierRequest(_message.Message):
    __slots__ = ("product_id", "dossier_id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DOSSIER_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    dossier_id: str
    def __init__(self, product_id: _Optional[str] = ..., dossier_id: _Optional[str] = ...) -> None: ...

class DeleteDossierResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
