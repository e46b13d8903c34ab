"""The contract suite: one set of behavioural tests for every provider.

Run it with ``pytest --pyargs imbridge.testing.contract --imbridge-provider <name> --imbridge-mode <mode>``
(see ``imbridge.testing.plugin``). Provider differences come only from the capability map: NATIVE and
EMULATED operations are tested for behaviour, UNSUPPORTED ones for ``UnsupportedOperationError``.
"""
