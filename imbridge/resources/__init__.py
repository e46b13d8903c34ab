"""The neutral operations, one module per resource: each holds its validation and flow construction
(``Operations``, written once) and its sync and async classes side by side. ``_base.py`` is what they
share; ``imbridge/client.py`` only wires them to a provider and an executor.

A new resource is a module here plus one line in ``client.py`` (``name = _Wired(Sync, Async)``).
"""

from imbridge.resources.groups import AsyncGroups, Groups
from imbridge.resources.messages import AsyncMessages, Messages
from imbridge.resources.users import AsyncUsers, Users

__all__ = ["AsyncGroups", "AsyncMessages", "AsyncUsers", "Groups", "Messages", "Users"]
