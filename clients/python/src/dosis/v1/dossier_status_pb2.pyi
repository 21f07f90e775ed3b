import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_PHASE_UNSPECIFIED: _ClassVar[StatusPhase]
    STATUS_PHASE_SAMENSTELLING_AANVRAAG: _ClassVar[StatusPhase]
    STATUS_PHASE_BEHANDELING_DOSSIER: _ClassVar[StatusPhase]
    STATUS_PHASE_BESLISSING: _ClassVar[StatusPhase]
    STATUS_PHASE_BEROEP: _ClassVar[StatusPhase]
    STATUS_PHASE_BESLISSING_DEFINITIEF: _ClassVar[StatusPhase]
    STATUS_PHASE_UITVOERING: _ClassVar[StatusPhase]
    STATUS_PHASE_AFGESLOTEN: _ClassVar[StatusPhase]

class StatusCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_CODE_UNSPECIFIED: _ClassVar[StatusCode]
    STATUS_CODE_GEINITIEERD: _ClassVar[StatusCode]
    STATUS_CODE_AANGEVRAAGD: _ClassVar[StatusCode]
    STATUS_CODE_INGEDIEND: _ClassVar[StatusCode]
    STATUS_CODE_ONTVANGEN: _ClassVar[StatusCode]
    STATUS_CODE_DOORGESTUURD: _ClassVar[StatusCode]
    STATUS_CODE_IN_ONDERZOEK: _ClassVar[StatusCode]
    STATUS_CODE_ONTVANKELIJK: _ClassVar[StatusCode]
    STATUS_CODE_ONONTVANKELIJK: _ClassVar[StatusCode]
    STATUS_CODE_DOSSIER_VOLLEDIG: _ClassVar[StatusCode]
    STATUS_CODE_DOSSIER_ONVOLLEDIG: _ClassVar[StatusCode]
    STATUS_CODE_AFGEWEZEN: _ClassVar[StatusCode]
    STATUS_CODE_IN_BEHANDELING: _ClassVar[StatusCode]
    STATUS_CODE_BESLIST: _ClassVar[StatusCode]
    STATUS_CODE_GOEDGEKEURD: _ClassVar[StatusCode]
    STATUS_CODE_GEWEIGERD: _ClassVar[StatusCode]
    STATUS_CODE_IN_WACHT: _ClassVar[StatusCode]
    STATUS_CODE_UITGEVOERD: _ClassVar[StatusCode]
    STATUS_CODE_KLAAR_VOOR_BETALING: _ClassVar[StatusCode]
    STATUS_CODE_DEELS_UITBETAALD: _ClassVar[StatusCode]
    STATUS_CODE_BETAALD: _ClassVar[StatusCode]
    STATUS_CODE_STOPZETTING: _ClassVar[StatusCode]
    STATUS_CODE_ERKEND_VERGUND: _ClassVar[StatusCode]
    STATUS_CODE_AFGESLOTEN: _ClassVar[StatusCode]
STATUS_PHASE_UNSPECIFIED: StatusPhase
STATUS_PHASE_SAMENSTELLING_AANVRAAG: StatusPhase
STATUS_PHASE_BEHANDELING_DOSSIER: StatusPhase
STATUS_PHASE_BESLISSING: StatusPhase
STATUS_PHASE_BEROEP: StatusPhase
STATUS_PHASE_BESLISSING_DEFINITIEF: StatusPhase
STATUS_PHASE_UITVOERING: StatusPhase
STATUS_PHASE_AFGESLOTEN: StatusPhase
STATUS_CODE_UNSPECIFIED: StatusCode
STATUS_CODE_GEINITIEERD: StatusCode
STATUS_CODE_AANGEVRAAGD: StatusCode
STATUS_CODE_INGEDIEND: StatusCode
STATUS_CODE_ONTVANGEN: StatusCode
STATUS_CODE_DOORGESTUURD: StatusCode
STATUS_CODE_IN_ONDERZOEK: StatusCode
STATUS_CODE_ONTVANKELIJK: StatusCode
STATUS_CODE_ONONTVANKELIJK: StatusCode
STATUS_CODE_DOSSIER_VOLLEDIG: StatusCode
STATUS_CODE_DOSSIER_ONVOLLEDIG: StatusCode
STATUS_CODE_AFGEWEZEN: StatusCode
STATUS_CODE_IN_BEHANDELING: StatusCode
STATUS_CODE_BESLIST: StatusCode
STATUS_CODE_GOEDGEKEURD: StatusCode
STATUS_CODE_GEWEIGERD: StatusCode
STATUS_CODE_IN_WACHT: StatusCode
STATUS_CODE_UITGEVOERD: StatusCode
STATUS_CODE_KLAAR_VOOR_BETALING: StatusCode
STATUS_CODE_DEELS_UITBETAALD: StatusCode
STATUS_CODE_BETAALD: StatusCode
STATUS_CODE_STOPZETTING: StatusCode
STATUS_CODE_ERKEND_VERGUND: StatusCode
STATUS_CODE_AFGESLOTEN: StatusCode
LABEL_FIELD_NUMBER: _ClassVar[int]
label: _descriptor.FieldDescriptor

class Reference(_message.Message):
    __slots__ = ("url", "email", "contact")
    URL_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    url: str
    email: str
    contact: str
    def __init__(self, url: _Optional[str] = ..., email: _Optional[str] = ..., contact: _Optional[str] = ...) -> None: ...

class DossierStatus(_message.Message):
    __slots__ = ("enterprise_number", "product_id", "dossier_id", "phase", "status", "detail_status", "status_time", "reference", "required_roles", "public", "supplier_id", "action_required", "action", "visible_until", "product_name", "update_time")
    ENTERPRISE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DOSSIER_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_TIME_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_ROLES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SUPPLIER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    enterprise_number: str
    product_id: str
    dossier_id: str
    phase: StatusPhase
    status: StatusCode
    detail_status: str
    status_time: _timestamp_pb2.Timestamp
    reference: Reference
    required_roles: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    supplier_id: str
    action_required: bool
    action: str
    visible_until: _timestamp_pb2.Timestamp
    product_name: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, enterprise_number: _Optional[str] = ..., product_id: _Optional[str] = ..., dossier_id: _Optional[str] = ..., phase: _Optional[_Union[StatusPhase, str]] = ..., status: _Optional[_Union[StatusCode, str]] = ..., detail_status: _Optional[str] = ..., status_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reference: _Optional[_Union[Reference, _Mapping]] = ..., required_roles: _Optional[_Iterable[str]] = ..., public: bool = ..., supplier_id: _Optional[str] = ..., action_required: bool = ..., action: _Optional[str] = ..., visible_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., product_name: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
