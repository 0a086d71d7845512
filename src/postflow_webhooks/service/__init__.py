"""The use cases over the ports: apply deliveries, announce changes, enrich, reconcile.

Nothing here knows Discord, httpx, SQLite or Starlette: every outside part
arrives through a port (``domain/ports.py``), every retry policy as an
injected ``Backoff``.
"""
