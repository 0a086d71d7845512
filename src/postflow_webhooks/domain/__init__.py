"""The pure core: payload parsing, the status table, records and ports.

Nothing in this package performs I/O, reads the clock or the environment, or
imports from ``adapters`` or ``app``.
"""
