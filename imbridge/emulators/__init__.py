"""Stateful emulators of the vendors' server REST APIs, for tests and demos that need no cloud account.

``imbridge.emulators.tencent.TencentEmulator`` and ``imbridge.emulators.wukong.WukongEmulator`` keep their
state in the same SQLite store as the ``local`` provider. Use one in process through
``emulator.transport()`` (an httpx transport, sync and async), or on 127.0.0.1 with
``imbridge.emulators.serve(emulator)`` / ``imbridge emulate tencent|wukong --port P``; WuKongIM's JSON-RPC
WebSocket with ``imbridge.emulators.serve_jsonrpc(emulator.jsonrpc)``.
"""

from imbridge.emulators._base import (
    EmulatorReply,
    EmulatorRequest,
    EmulatorTransport,
    JsonRpcServer,
    LoopbackServer,
    serve,
    serve_jsonrpc,
)

__all__ = [
    "EmulatorReply", "EmulatorRequest", "EmulatorTransport", "JsonRpcServer", "LoopbackServer", "serve",
    "serve_jsonrpc",
]
