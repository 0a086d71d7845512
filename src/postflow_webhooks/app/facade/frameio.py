"""The facade's Frame.io webhook: created with PostFlow's sign-in (or ours), then kept in step.

``create_webhook_sync`` registers the webhook at the tunnel's public URL. Its
signing secret is in force at once (and stored like ``register`` stores it),
and from then on the webhook follows the tunnel's URL when cloudflared
restarts with a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from postflow_webhooks.adapters.frameio import FrameioAdapter, FrameioError, retry_policy
from postflow_webhooks.adapters.frameio.borrowed import BorrowedTokens
from postflow_webhooks.app.composition import borrowed_frameio_config, frameio_config
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.service.registration import WebhookRegistrar

if TYPE_CHECKING:
    from postflow_webhooks.app.facade.manager import FrameIOWebhookManager

log = logging.getLogger("postflow_webhooks.facade")

T = TypeVar("T")

DEFAULT_NAME = "PostFlow Webhook"
CALL_TIMEOUT = 120.0
MEMORY_FILE = "frameio_facade_webhook.json"


class FacadeFrameio:
    """Create, follow and delete the Frame.io webhook on behalf of PostFlow."""

    def __init__(self, manager: FrameIOWebhookManager) -> None:
        self._manager = manager
        self._adapter: FrameioAdapter | None = None
        self._registrar: WebhookRegistrar | None = None
        self._following = False

    def create(
        self, auth: Any, account_id: str | None, workspace_id: str | None, name: str
    ) -> bool:
        """Register the webhook at the public URL; False with ``last_error`` when it cannot."""
        manager = self._manager
        runtime, public = manager.runtime, manager.get_public_webhook_url()
        if runtime is None or not manager.running:
            return self._fail("the receiver is not running: call start_webhook_server() first")
        if public is None:
            return self._fail(
                "no public URL yet: start the receiver with use_cloudflare_tunnel=True first"
            )
        if runtime.registrar is not None and runtime.registrar is not self._registrar:
            return self._adopt_ours(runtime.registrar)
        try:
            adapter = self._adapter_for(auth, account_id, workspace_id, name)
        except (ValueError, TypeError) as exc:
            return self._fail(str(exc))
        try:
            registration = self._run(adapter.webhooks.register(public))
        except FrameioError as exc:
            self._run(adapter.aclose())
            return self._fail(f"Frame.io did not register the webhook: {exc}")
        self._replace_adapter(adapter)
        secret = registration.secret
        if secret:
            runtime.secrets.add(secret)
        info = registration.webhook
        manager.webhook_data.update(
            webhook_id=info.id,
            events=list(info.events),
            status="active",
            name=info.name,
            signing_secret=secret or next(iter(runtime.secrets.current()), None),
        )
        self._remember(info.id, info.name)
        if runtime.reconciler is not None:
            runtime.reconciler.use_account(adapter.config.account_id)
        if runtime.tunnel is not None:
            self._registrar = WebhookRegistrar(
                adapter.webhooks,
                runtime.clock,
                backoff=Policies().registration,
                create_if_missing=False,
            )
            self._registrar.registered(info.id, info.url or public)
            runtime.registrar = self._registrar
            if not self._following:
                runtime.tunnel.subscribe(self._follow)
            self._following = True
        log.info("Frame.io webhook %s points at %s", info.id, info.url or public)
        return True

    def _adopt_ours(self, registrar: WebhookRegistrar) -> bool:
        """Our own credentials already keep a webhook at the public URL: one is enough."""
        manager, runtime = self._manager, self._manager.runtime
        try:
            self._run(asyncio.wait_for(registrar.wait_idle(), CALL_TIMEOUT))
        except TimeoutError:
            pass
        status = registrar.status()
        if status.webhook_id is None or runtime is None:
            return self._fail(
                "our own Frame.io webhook is not registered yet"
                + (f": {status.last_error}" if status.last_error else "")
            )
        manager.webhook_data.update(
            webhook_id=status.webhook_id,
            status="active",
            signing_secret=next(iter(runtime.secrets.current()), None),
        )
        log.info(
            "Frame.io webhook %s (ours, from client_id/client_secret) already points at %s",
            status.webhook_id,
            status.registered_url,
        )
        return True

    def delete(self, auth: Any, account_id: str | None, workspace_id: str | None) -> bool:
        """Delete the webhook this manager created (or ours by name); False on failure."""
        data = self._manager.webhook_data
        remembered = self._remembered()
        name = str(data.get("name") or remembered.get("name") or DEFAULT_NAME)
        try:
            adapter = self._adapter or self._adapter_for(auth, account_id, workspace_id, name)
        except (ValueError, TypeError) as exc:
            return self._fail(str(exc))
        webhook_id = data.get("webhook_id") or remembered.get("webhook_id")
        owned = adapter is not self._adapter

        async def remove() -> None:
            try:
                if webhook_id:
                    await adapter.webhooks.delete(str(webhook_id))
                    adapter.webhooks.secret_file.clear()
                else:
                    await adapter.webhooks.unregister()
            finally:
                if owned:
                    await adapter.aclose()

        try:
            self._run(remove())
        except FrameioError as exc:
            return self._fail(f"Frame.io did not delete the webhook: {exc}")
        self._following = False
        self._memory_path().unlink(missing_ok=True)
        data.update(webhook_id=None, status="deleted", signing_secret=None)
        return True

    def close(self) -> None:
        """Stop following the tunnel and close the HTTP clients (while the loop still runs)."""
        self._following = False
        self._replace_adapter(None)

    async def _follow(self, public_url: str) -> None:
        registrar = self._registrar
        if self._following and registrar is not None:
            await registrar.on_new_public_url(public_url)

    def _adapter_for(
        self, auth: Any, account_id: str | None, workspace_id: str | None, name: str
    ) -> FrameioAdapter:
        manager = self._manager
        settings = manager.resolve_settings()
        config = frameio_config(settings)
        tokens = None
        if config is None:
            lender = auth if auth is not None else manager.frameio_auth
            if lender is None:
                raise ValueError(
                    "no Frame.io sign-in: pass frameio_auth= (PostFlow's FrameIOAuth), or "
                    "configure client_id and client_secret in config/frameio_config.json"
                )
            config, tokens = borrowed_frameio_config(settings), BorrowedTokens(lender)
        account = account_id or config.account_id
        workspace = workspace_id or config.workspace_id
        if not account or not workspace:
            raise ValueError("account_id= and workspace_id= are needed to register the webhook")
        config = attrs.evolve(config, account_id=account, workspace_id=workspace, webhook_name=name)
        return FrameioAdapter(config, retrying=retry_policy(), tokens=tokens)

    def _memory_path(self) -> Path:
        return self._manager.resolve_settings().data_dir / MEMORY_FILE

    def _remember(self, webhook_id: str, name: str) -> None:
        """Keep which webhook this manager created, so a later delete finds it after a restart."""
        path = self._memory_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"webhook_id": webhook_id, "name": name}), encoding="utf-8")

    def _remembered(self) -> dict[str, Any]:
        try:
            found = json.loads(self._memory_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _replace_adapter(self, adapter: FrameioAdapter | None) -> None:
        old, self._adapter = self._adapter, adapter
        if self._registrar is not None and adapter is None:
            registrar, self._registrar = self._registrar, None
            self._run(registrar.aclose())
        if old is not None and old is not adapter:
            self._run(old.aclose())

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        loop = self._manager.loop
        if loop is not None and loop.alive:
            return loop.call(work, timeout=CALL_TIMEOUT)
        return asyncio.run(work)

    def _fail(self, reason: str) -> bool:
        self._manager.last_error = reason
        log.error("Frame.io webhook: %s", reason)
        return False
