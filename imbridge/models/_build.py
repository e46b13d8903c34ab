"""Building result models from values imbridge has already validated."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set_attribute = object.__setattr__  # the models are frozen: their own __setattr__ refuses
# BaseModel's slots, set through their descriptors: a third of the cost of object.__setattr__ by name.
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_new = object.__new__  # what ``model.__new__`` is: BaseModel defines no __new__


def fill(instance: BaseModel, fields: dict[str, Any], fields_set: set[str]) -> None:
    """Give a blank ``instance`` the state pydantic's validation would: ``fields`` as its ``__dict__``,
    ``fields_set`` as the fields given, no extra and no private attributes."""
    _set_attribute(instance, "__dict__", fields)
    _set_fields_set(instance, fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)


def prevalidated(model: type[M], fields: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """``model`` holding ``fields`` as given, not validated again.

    Only for values imbridge built itself from parts it has validated, on the send path the async-speed
    benchmark measures: there, pydantic's validation of the text element and of the result was a quarter
    of imbridge's own time per send under load. This is what ``model_construct`` does, without its
    per-field default handling, so ``fields`` must name every field of ``model`` (defaults included),
    each of its declared type. ``fields_set`` is what the constructor would record as given (all of
    ``fields`` by default). Tests build every such model both ways and compare them.
    """
    instance = _new(model)
    # fill(), inlined: a send builds three such models, and a call less each shows at 64 sends in flight.
    _set_attribute(instance, "__dict__", fields)
    _set_fields_set(instance, set(fields) if fields_set is None else fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance
