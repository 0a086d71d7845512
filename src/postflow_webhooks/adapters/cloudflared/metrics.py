"""A small client for cloudflared's metrics server: ``/quicktunnel`` and ``/ready``.

cloudflared sets no Content-Type, so bodies are parsed as JSON regardless. Before
the banner the port refuses connections; that reads as "not yet", never as an error.
"""

from __future__ import annotations

import json

import attrs
import httpx


@attrs.frozen
class QuickTunnelAnswer:
    """What ``/quicktunnel`` said: the hostname, or that the endpoint is missing (too old)."""

    hostname: str | None
    missing: bool = False


class MetricsClient:
    """Ask one cloudflared's metrics server about its hostname and readiness."""

    def __init__(self, host: str, port: int, *, timeout: float = 2.0) -> None:
        self.base_url = f"http://{host}:{port}"
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, trust_env=False)

    async def _get(self, path: str) -> httpx.Response | None:
        try:
            return await self._client.get(path)
        except httpx.TransportError:
            return None

    async def ready(self) -> bool:
        """Whether ``/ready`` answers 200 (a registered edge connection)."""
        response = await self._get("/ready")
        return response is not None and response.status_code == 200

    async def quicktunnel(self) -> QuickTunnelAnswer | None:
        """The quick tunnel's hostname (no scheme); None when the server is not up yet."""
        response = await self._get("/quicktunnel")
        if response is None:
            return None
        if response.status_code == 404:
            return QuickTunnelAnswer(hostname=None, missing=True)
        try:
            body = json.loads(response.content)
        except ValueError:
            return QuickTunnelAnswer(hostname=None)
        hostname = body.get("hostname") if isinstance(body, dict) else None
        return QuickTunnelAnswer(
            hostname=hostname if isinstance(hostname, str) and hostname else None
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
