from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class OpenAccountRequest(_message.Message):
    __slots__ = ("account", "balance")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    account: str
    balance: int
    def __init__(self, account: _Optional[str] = ..., balance: _Optional[int] = ...) -> None: ...

class OpenAccountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadAccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class ReadAccountResponse(_message.Message):
    __slots__ = ("found", "balance", "held")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    found: bool
    balance: int
    held: int
    def __init__(self, found: _Optional[bool] = ..., balance: _Optional[int] = ..., held: _Optional[int] = ...) -> None: ...

class PrepareMessageRequest(_message.Message):
    __slots__ = ("transaction_uid", "namespace", "name", "account", "amount", "commit")
    TRANSACTION_UID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    transaction_uid: str
    namespace: str
    name: str
    account: str
    amount: int
    commit: bool
    def __init__(self, transaction_uid: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., account: _Optional[str] = ..., amount: _Optional[int] = ..., commit: _Optional[bool] = ...) -> None: ...

class PrepareMessageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
