"""RetryPolicy: which failures are retried, how often, and how long to wait. Compiled to tenacity."""

from __future__ import annotations

import random
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    """How the executor retries one request.

    Only retryable errors are retried: transport failures (when re-sending cannot duplicate an
    effect), rate limits and provider-side unavailability. A ``retry_after`` from the provider is
    honoured up to ``max_retry_after``; otherwise the wait grows exponentially from ``initial_backoff``
    to ``max_backoff`` with full jitter.
    """

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=3, ge=1, le=100, description="attempts in all, the first included")
    initial_backoff: float = Field(default=0.2, ge=0, description="seconds")
    max_backoff: float = Field(default=10.0, ge=0, description="seconds")
    max_retry_after: float = Field(default=60.0, ge=0, description="cap on a provider's retry_after, seconds")
    jitter: bool = True

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
        ceiling: float = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry_number - 1))
        if not self.jitter:
            return ceiling
        return float((rng or random).uniform(0, ceiling))
