"""Helpers for testing code that uses imbridge (and imbridge itself). Importable without pytest."""

from imbridge.testing.clock import FakeClock, ShiftedClock

__all__ = ["FakeClock", "ShiftedClock"]
