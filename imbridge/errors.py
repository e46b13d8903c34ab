"""The one exception hierarchy of imbridge.

Every error carries the provider, the neutral operation, the provider's native code and the number of
attempts made, so that a log line or a bug report says what happened without the request body (user
data) or any secret.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

from typing_extensions import Unpack

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "IMBridgeError",
    "InvalidRequestError",
    "MessageMayHaveLandedError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "ServiceUnavailableError",
    "TimeoutError",
    "TransportError",
    "UnsupportedOperationError",
]


class ErrorContext(TypedDict, total=False):
    """Where an error happened; every error class accepts these keywords."""

    provider: str | None
    operation: str | None
    native_code: int | str | None
    attempts: int
    request_id: str | None


class ProviderErrorContext(ErrorContext, total=False):
    """The context of an error the provider answered with."""

    http_status: int | None


class IMBridgeError(Exception):
    """Base of every error raised by imbridge."""

    #: Whether the executor may retry the request that produced this error.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        native_code: int | str | None = None,
        attempts: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        self.native_code = native_code
        self.attempts = attempts
        self.request_id = request_id

    def __str__(self) -> str:
        context = [
            f"{label}={value}"
            for label, value in (
                ("provider", self.provider),
                ("operation", self.operation),
                ("code", self.native_code),
                ("attempts", self.attempts or None),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} [{', '.join(context)}]" if context else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(IMBridgeError):
    """Settings are missing or invalid, or an unknown provider was named."""


class UnsupportedOperationError(IMBridgeError):
    """The provider's capability map declares the operation UNSUPPORTED; nothing was sent."""


class TransportError(IMBridgeError):
    """The request did not produce an HTTP response (connection refused, reset, bad body...).

    ``may_have_landed`` says whether the server could have processed the request: true once the
    request was written (a reset or a timeout after sending), false when the connection never opened.
    """

    retryable = True

    def __init__(self, message: str, *, may_have_landed: bool = True, **context: Unpack[ErrorContext]) -> None:
        super().__init__(message, **context)
        self.may_have_landed = may_have_landed


class TimeoutError(TransportError):  # noqa: A001 - the name DESIGN.md gives; shadows the builtin on purpose
    """No response arrived within the configured timeout."""


class MessageMayHaveLandedError(TransportError):
    """A send whose outcome is unknown, and that imbridge will not repeat for you.

    The request may have reached the server (a timeout or a reset after it was written, a 5xx, an
    accepted message not stored in time) and a lookup of its idempotency key found nothing yet; but a
    request held on the way can still land later, and a server that does not deduplicate (WuKongIM)
    would then store a re-sent copy too. So the message is neither reported sent nor sent again.

    Reconcile it later: ``im.messages.find_by_key(error.sender, error.conversation, error.idempotency_key)``
    returns the stored message or None. Sending again with the same ``idempotency_key`` is safe once the
    original can no longer arrive (the send looks the key up first). ``__cause__`` is the failure seen.
    Not ``retryable``: a blind retry is exactly what this error exists to prevent.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str,
        sender: str,
        conversation: Any,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, may_have_landed=True, **context)
        self.idempotency_key = idempotency_key
        self.sender = sender
        #: The :class:`~imbridge.models.Conversation` the message was sent to.
        self.conversation = conversation


class ProviderError(IMBridgeError):
    """The provider answered, and the answer is an error."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.http_status = http_status


class AuthenticationError(ProviderError):
    """Credentials were refused (bad key, expired UserSig, wrong manager token).

    ``credentials_expired`` marks the one case the executor repairs itself: it renews the credential
    and retries once.
    """

    def __init__(
        self, message: str, *, credentials_expired: bool = False, **context: Unpack[ProviderErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.credentials_expired = credentials_expired


class PermissionDeniedError(ProviderError):
    """The caller may not do this: a muted sender, a non-member, a missing admin right."""


class InvalidRequestError(ProviderError):
    """The request cannot be valid. Raised before any I/O when imbridge can tell by itself."""


class NotFoundError(ProviderError):
    """The user, group or message does not exist."""


class ConflictError(ProviderError):
    """The target already exists or was changed concurrently."""


class RateLimitError(ProviderError):
    """The provider refused the call for frequency; ``retry_after`` is its hint, when it gave one."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: timedelta | None = None, **context: Unpack[ProviderErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class ServiceUnavailableError(ProviderError):
    """The provider failed internally or is overloaded; retrying later may succeed."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: timedelta | None = None, **context: Unpack[ProviderErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after
