from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BranchRequest(_message.Message):
    __slots__ = ("transaction_uid", "namespace", "name", "branch", "operation", "payload", "attempt", "result")
    TRANSACTION_UID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    transaction_uid: str
    namespace: str
    name: str
    branch: str
    operation: str
    payload: bytes
    attempt: int
    result: bytes
    def __init__(self, transaction_uid: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., branch: _Optional[str] = ..., operation: _Optional[str] = ..., payload: _Optional[bytes] = ..., attempt: _Optional[int] = ..., result: _Optional[bytes] = ...) -> None: ...

class BranchResponse(_message.Message):
    __slots__ = ("message", "data")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    message: str
    data: bytes
    def __init__(self, message: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class CheckPreparedRequest(_message.Message):
    __slots__ = ("transaction_uid", "namespace", "name", "operation", "payload")
    TRANSACTION_UID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    transaction_uid: str
    namespace: str
    name: str
    operation: str
    payload: bytes
    def __init__(self, transaction_uid: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., operation: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class CheckPreparedResponse(_message.Message):
    __slots__ = ("state",)
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNKNOWN: _ClassVar[CheckPreparedResponse.State]
        STATE_COMMITTED: _ClassVar[CheckPreparedResponse.State]
        STATE_ROLLED_BACK: _ClassVar[CheckPreparedResponse.State]
    STATE_UNKNOWN: CheckPreparedResponse.State
    STATE_COMMITTED: CheckPreparedResponse.State
    STATE_ROLLED_BACK: CheckPreparedResponse.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: CheckPreparedResponse.State
    def __init__(self, state: _Optional[_Union[CheckPreparedResponse.State, str]] = ...) -> None: ...
