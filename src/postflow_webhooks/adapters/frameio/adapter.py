"""One object the composition root builds from a ``FrameioConfig``: every Frame.io part, wired."""

from __future__ import annotations

import asyncio

import httpx
import tenacity

from postflow_webhooks.adapters.frameio.auth import ImsAuth
from postflow_webhooks.adapters.frameio.client import (
    FrameioClient,
    Sleep,
    TokenSource,
    retry_policy,
)
from postflow_webhooks.adapters.frameio.config import FrameioConfig
from postflow_webhooks.adapters.frameio.details import STATUS_FIELD, FrameioFileDetails
from postflow_webhooks.adapters.frameio.directory import FrameioDirectory
from postflow_webhooks.adapters.frameio.errors import FrameioError
from postflow_webhooks.adapters.frameio.observed import FrameioObserver, ObservedTokens
from postflow_webhooks.adapters.frameio.webhooks import FrameioWebhooks, Pacer, SecretFile
from postflow_webhooks.domain.ports import Clock


class FrameioAdapter:
    """Tokens, client, file details, names and webhooks sharing one token source and HTTP pool."""

    def __init__(
        self,
        config: FrameioConfig,
        *,
        clock: Clock | None = None,
        retrying: tenacity.AsyncRetrying | None = None,
        sleep: Sleep = asyncio.sleep,
        http: httpx.AsyncClient | None = None,
        tokens: TokenSource | None = None,
        review_field: str = STATUS_FIELD,
    ) -> None:
        self.config = config
        self.observer = FrameioObserver(clock)
        # Our own sign-in, unless the host lends its tokens (``borrowed.py``).
        self.auth: ImsAuth | None = None
        if tokens is None:
            self.auth = ImsAuth(config, clock=clock, observer=self.observer)
            tokens = self.auth
        else:
            tokens = ObservedTokens(tokens, self.observer)
        self._tokens = tokens
        self.client = FrameioClient(
            config,
            tokens,
            http=http,
            retrying=retrying or retry_policy(sleep=sleep),
            observer=self.observer,
        )
        self.details = FrameioFileDetails(
            self.client,
            account_id=config.account_id,
            cache_ttl=config.details_cache_ttl,
            clock=clock,
            review_field=review_field,
        )
        self.directory = FrameioDirectory(self.client, account_id=config.account_id, clock=clock)
        self.webhooks = FrameioWebhooks(
            self.client,
            account_id=config.account_id,
            workspace_id=config.workspace_id,
            secret_file=SecretFile(config.webhook_secret_path),
            name=config.webhook_name,
            pacer=Pacer(sleep=sleep),
        )

    async def check_signin(self) -> None:
        """Make sure a token can be had (a cached valid one costs no call); errors are observed."""
        try:
            await self._tokens.access_token()
        except FrameioError:
            pass

    def stored_secret(self) -> str | None:
        """The webhook signing secret saved by the last ``register``, if any."""
        return self.webhooks.secret_file.load()

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.client.aclose()
        if self.auth is not None:
            await self.auth.aclose()
