"""RetryPolicy: which failures are retried, how often, and how long to wait. Compiled to tenacity."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imbridge.errors import ConfigurationError
from imbridge.models._validation import validation_problems


class RetryPolicy(BaseModel):
    """How the executor retries one request.

    Only retryable errors are retried: transport failures (when re-sending cannot duplicate an
    effect), rate limits and provider-side unavailability. A ``retry_after`` from the provider is
    honoured up to ``max_retry_after``; otherwise the wait grows exponentially from ``initial_backoff``
    to ``max_backoff`` with full jitter.

    ``max_total_wait`` bounds the time one call spends waiting between its attempts, in all: a retry whose
    wait would go past it is not made, and the call raises the last error at once (a RateLimitError keeps
    the provider's ``retry_after``, so the caller can schedule the work itself). With the defaults, a
    provider asking for more than 30 s (``Retry-After: 1e9``, say) fails the call without waiting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_attempts: int = Field(default=3, ge=1, le=100, description="attempts in all, the first included")
    initial_backoff: float = Field(default=0.2, ge=0, le=3600, description="seconds")
    max_backoff: float = Field(default=10.0, ge=0, le=3600, description="seconds")
    max_retry_after: float = Field(
        default=60.0, ge=0, le=86_400, description="cap on one wait a provider's retry_after asks for, seconds"
    )
    max_total_wait: float = Field(
        default=30.0, ge=0, le=86_400, description="most seconds one call waits between its attempts, in all"
    )
    jitter: bool = True

    if not TYPE_CHECKING:  # type checkers keep the signature pydantic derives from the fields

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as error:
                raise ConfigurationError(f"invalid RetryPolicy: {validation_problems(error)}") from None

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def backoff(
        self, retry_number: int, retry_after: timedelta | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after.total_seconds(), 0.0), self.max_retry_after)
        if isinstance(retry_number, bool) or not isinstance(retry_number, int) or retry_number < 1:
            raise ConfigurationError(f"retry_number must be an integer from 1, got {retry_number!r}")
        exponent = min(retry_number - 1, 64)  # 2.0 ** 1024 overflows; the ceiling is max_backoff long before
        ceiling: float = min(self.max_backoff, self.initial_backoff * 2.0**exponent)
        if not self.jitter:
            return ceiling
        return float((rng or random).uniform(0, ceiling))
