"""Helpers for testing code that uses imbridge (and imbridge itself). Importable without pytest."""

from imbridge.testing.clock import FakeClock

__all__ = ["FakeClock"]
