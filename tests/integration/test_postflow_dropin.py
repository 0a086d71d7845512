"""PostFlow 4.3 runs on our manager with only its import line changed.

``tests/fakes/postflow.py`` drives ``FrameIOWebhookManager`` the way PostFlow's
``WebhookService`` does, with a tracker that behaves like PostFlow's
``UploadTracker``, the fake cloudflared for the tunnel and the fake Frame.io
for PostFlow's own sign-in and the webhook.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks import FrameIOWebhookManager
from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED, public_port, starts
from tests.fakes.fake_frameio import FakeFrameio
from tests.fakes.postflow import FrameIOAuth, UploadStatus, UploadTracker, WebhookService
from tests.support import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def frameio() -> Iterator[FakeFrameio]:
    """The fake Frame.io API and IMS."""
    with FakeFrameio() as fake:
        yield fake


@pytest.fixture
def postflow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frameio: FakeFrameio) -> Path:
    """PostFlow's process environment: our data under tmp_path, the fakes for the outside."""
    for name in ("POSTFLOW_WEBHOOK_SECRET", "POSTFLOW_TUNNEL", "POSTFLOW_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POSTFLOW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("POSTFLOW_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("POSTFLOW_CLOUDFLARED", str(FAKE_CLOUDFLARED))
    monkeypatch.setenv("POSTFLOW_FRAMEIO_API_BASE", frameio.url)
    monkeypatch.setenv("FAKE_CLOUDFLARED_STATE_DIR", str(tmp_path / "fake"))
    return tmp_path


def auth_for(fake: FakeFrameio) -> FrameIOAuth:
    """PostFlow's own Frame.io sign-in, against the fake IMS."""
    return FrameIOAuth(f"{fake.url}/ims/token/v3", fake.client_id, fake.client_secret)


def our_threads() -> set[str]:
    """Names of the threads the receiver starts."""
    prefixes = ("postflow-webhooks", "sqlite-reads", "postflow-tracker", "json-tracker")
    return {t.name for t in threading.enumerate() if t.name.startswith(prefixes)}


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def deliver(fake: FakeFrameio, tmp_path: Path, event: str, file_id: str) -> int:
    """Frame.io sends a signed delivery to the registered URL, through the fake tunnel."""

    def resolve(url: str) -> str:
        base = url.removesuffix("/frameio-webhook")
        return f"http://127.0.0.1:{public_port(tmp_path, base)}/frameio-webhook"

    answer = asyncio.run(fake.deliver(event, file_id, resolve=resolve))
    assert answer is not None
    return answer.status_code


def test_postflows_service_runs_on_our_manager_end_to_end(
    postflow_env: Path, frameio: FakeFrameio
) -> None:
    """start, URL at once, monitoring, test_webhook, registration, deliveries, status, stop."""
    tmp_path = postflow_env
    file_id = frameio.add_file("SH010_v001.mov", status="transcoded")
    tracker = UploadTracker()
    upload_id = tracker.add_upload("/shots/SH010_v001.mov", "SH010", "v001")
    port = free_port()
    auth = auth_for(frameio)
    service = WebhookService(FrameIOWebhookManager, tracker, port=port, frameio_auth=auth)
    assert service.start_service(), service.errors
    manager = service.manager
    assert manager.last_error is None
    assert service.webhook_url is not None
    assert service.webhook_url.startswith("https://") and service.webhook_url.endswith(
        "/frameio-webhook"
    )
    wait_for(lambda: service.monitor_checks >= 3)
    assert manager.tunnel_manager.is_tunnel_healthy()
    assert service.unhealthy_seen == 0

    # test_webhook: a file nobody tracks; it does not raise, and PostFlow's list stays its own.
    assert service.test_webhook(), service.errors
    assert set(tracker.tracking_data["uploads"]) == {upload_id}

    # Before the webhook is registered there is no secret: deliveries are refused, not trusted.
    body = frameio.payload("file.upload.completed", file_id)
    early = httpx.post(
        f"http://127.0.0.1:{public_port(tmp_path, manager.webhook_url)}/frameio-webhook",
        content=body,
        headers=FakeFrameio.sign("guessed", body),
    )
    assert early.status_code == 401
    assert early.json()["reason"] == "no_secret_yet"
    health = httpx.get(f"{manager.local_url}/health").json()
    assert health["signature_verification"] == "locked"
    assert any("no signing secret yet" in w for w in health["warnings"])

    assert service.configure_frameio_webhook(frameio.account_id, frameio.workspace_id, auth)
    (hook,) = frameio.webhooks.values()
    assert hook["name"] == "PostFlow Webhook (Auto)"
    assert hook["url"] == service.webhook_url
    assert manager.webhook_data["webhook_id"] == hook["id"]
    assert "<set>" in repr(manager.webhook_data) and hook["secret"] not in repr(
        manager.webhook_data
    )

    assert httpx.get(f"{manager.local_url}/health").json()["signature_verification"] == "on"
    registered = httpx.get(f"{manager.local_url}/webhook-status").json()["frameio_webhook"]
    assert registered["webhook_id"] == hook["id"]
    assert registered["registered_url"] == service.webhook_url
    assert deliver(frameio, tmp_path, "file.upload.completed", file_id) == 202
    assert deliver(frameio, tmp_path, "file.ready", file_id) == 202
    wait_for(lambda: tracker.get_upload(upload_id)["status"] == UploadStatus.COMPLETED.value)
    entry = tracker.get_upload(upload_id)
    assert entry["frameio_data"]["file_id"] == file_id
    assert not tracker.would_upload_again(upload_id)

    frameio.set_status_field(file_id, "Approved")
    assert deliver(frameio, tmp_path, "metadata.value.updated", file_id) == 202
    wait_for(lambda: tracker.get_approved_uploads() != [])
    assert [u["upload_id"] for u in tracker.get_approved_uploads()] == [upload_id]
    assert [c[0] for c in tracker.status_calls()] == [
        "mark_processing",
        "mark_completed",
        "update_status",
    ]

    # PostFlow's intelligent tracking saw each delivery once: the test one and the three HTTP ones.
    assert service.intelligent is not None
    wait_for(lambda: len(service.intelligent.seen) == 4)
    seen = [(p["type"], p["resource"]["id"]) for p in service.intelligent.seen]
    assert sorted(seen) == sorted(
        [
            ("file.ready", "test_file_webhook"),
            ("file.upload.completed", file_id),
            ("file.ready", file_id),
            ("metadata.value.updated", file_id),
        ]
    )

    status = service.get_service_status()
    assert status["events_processed"] == 4
    assert status["last_event"]["file_id"] == file_id
    assert status["tunnel_info"]["public_url"] == manager.webhook_url
    assert status["webhook_stats"]["events_by_type"] == {
        "file.ready": 2,
        "file.upload.completed": 1,
        "metadata.value.updated": 1,
    }

    service.stop_service()
    assert service.errors == []
    assert port_is_free(port)
    assert our_threads() == set()
    assert [pid for pid in cloudflared_pids(tmp_path) if process_alive(pid)] == []
    assert manager.webhook_url is None
    manager.stop_webhook_server()  # twice is harmless


def test_postflows_sign_in_failing_defers_deliveries_with_its_reason(
    postflow_env: Path, frameio: FakeFrameio
) -> None:
    """frameio_auth is what enrichment uses; when it fails, deliveries wait and say why."""
    file_id = frameio.add_file("SH020_v002.mov", status="transcoded")
    auth = auth_for(frameio)
    manager = FrameIOWebhookManager(
        UploadTracker(), webhook_port=free_port(), use_cloudflare_tunnel=False, frameio_auth=auth
    )
    assert manager.start_webhook_server(), manager.last_error
    try:
        manager.process_webhook_sync(json.loads(frameio.payload("file.ready", file_id)))
        wait_for(lambda: upload(manager, file_id).get("name") == "SH020_v002.mov")
        assert auth.calls >= 1
        auth.broken = True
        manager.process_webhook_sync(json.loads(frameio.payload("file.versioned", file_id)))
        wait_for(lambda: upload(manager, file_id).get("pending_enrichment"))
        (waiting,) = upload(manager, file_id)["pending_enrichment"]
        assert "PostFlow's Frame.io sign-in failed" in waiting["last_error"]
    finally:
        manager.stop()


def upload(manager: FrameIOWebhookManager, file_id: str) -> dict[str, Any]:
    """The receiver's view of one file (its /uploads/{id} answer)."""
    answer = httpx.get(f"{manager.local_url}/uploads/{file_id}")
    return dict(answer.json()) if answer.status_code == 200 else {}


def cloudflared_pids(tmp_path: Path) -> list[int]:
    """Every fake cloudflared process the tests started."""
    return [int(record["pid"]) for record in starts(tmp_path)]


def process_alive(pid: int) -> bool:
    """True while a process runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_shared_server_path_starts_the_tunnel_through_tunnel_manager(
    postflow_env: Path, frameio: FakeFrameio
) -> None:
    """start_webhook_tunnel gives the public URL; PostFlow stores it and the tunnel's info."""
    service = WebhookService(
        FrameIOWebhookManager, UploadTracker(), port=free_port(), frameio_auth=auth_for(frameio)
    )
    assert service.start_service_with_shared_server()
    manager = service.manager
    assert manager.webhook_url.startswith("https://")
    assert service.webhook_url == manager.webhook_url + "/frameio-webhook"
    assert manager.webhook_data["tunnel_info"]["state"] == "ready"
    assert manager.tunnel_manager.get_webhook_url() == service.webhook_url
    assert manager.get_public_webhook_url(timeout=10) == service.webhook_url
    assert service.test_webhook(), service.errors
    service.stop_service()
    assert our_threads() == set()
    asked = time.monotonic()
    assert manager.get_public_webhook_url(timeout=10) is None
    assert time.monotonic() - asked < 1, "a stopped manager has no URL to wait for"


def test_no_tunnel_means_no_tunnel_manager_and_a_local_receiver(tmp_path: Path) -> None:
    """use_cloudflare_tunnel=False: tunnel_manager is None, the URL is None, deliveries work."""
    tracker = UploadTracker()
    manager = FrameIOWebhookManager(
        upload_tracker=tracker,
        webhook_port=free_port(),
        use_cloudflare_tunnel=False,
        data_dir=tmp_path / "data",
        environ={"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")},
    )
    assert manager.tunnel_manager is None
    with manager:
        assert manager.get_public_webhook_url() is None
        asked = time.monotonic()
        assert manager.get_public_webhook_url(timeout=0.3) is None
        assert time.monotonic() - asked >= 0.3
        manager.process_webhook_sync(
            {"event_type": "file.ready", "resource": {"id": "f1", "name": "a.mov"}}
        )
        wait_for(lambda: manager.get_webhook_stats()["total_events"] == 1)
    assert manager.get_webhook_stats()["webhook_status"] == "stopped"


def test_a_tracker_lacking_methods_is_named_at_start(tmp_path: Path) -> None:
    """start_webhook_server returns False and last_error lists what the tracker lacks."""

    class HalfTracker:
        def __init__(self) -> None:
            self.tracking_data: dict[str, Any] = {"uploads": {}}

        def get_upload(self, upload_id: str) -> None:
            """Only this one."""

    manager = FrameIOWebhookManager(
        upload_tracker=HalfTracker(),  # type: ignore[arg-type]
        use_cloudflare_tunnel=False,
        data_dir=tmp_path / "data",
        environ={},
    )
    assert manager.start_webhook_server() is False
    error = manager.last_error or ""
    for name in ("update_upload", "mark_processing", "mark_completed", "update_status"):
        assert name in error
    assert "get_upload," not in error
    assert not (tmp_path / "data").exists()


def test_refusals_name_the_facades_own_fix(tmp_path: Path) -> None:
    """A taken port names webhook_port=; a tunnel without a secret names webhook_secret=."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        manager = FrameIOWebhookManager(
            webhook_port=taken,
            use_cloudflare_tunnel=False,
            data_dir=tmp_path / "data",
            environ={},
        )
        assert manager.start_webhook_server() is False
    assert f"webhook_port={taken + 1}" in (manager.last_error or "")
    assert "--port" not in (manager.last_error or "")
    public = FrameIOWebhookManager(webhook_port=free_port(), data_dir=tmp_path / "d2", environ={})
    assert public.start_webhook_server() is False
    assert "webhook_secret=" in (public.last_error or "")
    assert "frameio_auth=" in (public.last_error or "")
    assert "POSTFLOW_ALLOW_INSECURE_PUBLIC" not in (public.last_error or "")
    # Both refusals left nothing behind: the data directories are free for the next try.
    again = FrameIOWebhookManager(
        webhook_port=free_port(), use_cloudflare_tunnel=False, data_dir=tmp_path / "d2", environ={}
    )
    assert again.start_webhook_server(), again.last_error
    again.stop()


def test_a_tunnel_that_never_comes_up_makes_start_return_false(
    postflow_env: Path, frameio: FakeFrameio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No public URL within the timeout: False, the reason in last_error, nothing left running."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_SCENARIO", "api_unreachable")
    port = free_port()
    manager = FrameIOWebhookManager(
        UploadTracker(), webhook_port=port, frameio_auth=auth_for(frameio), tunnel_timeout=5
    )
    started = time.monotonic()
    assert manager.start_webhook_server() is False
    assert "tunnel" in (manager.last_error or "")
    assert time.monotonic() - started < 60
    assert port_is_free(port)
    assert our_threads() == set()


def test_stop_before_start_and_twice_is_harmless(tmp_path: Path) -> None:
    """stop_webhook_server before any start, and again after a stop, does nothing."""
    manager = FrameIOWebhookManager(use_cloudflare_tunnel=False, data_dir=tmp_path, environ={})
    manager.stop_webhook_server()
    manager.stop()
    assert manager.webhook_data["status"] == "inactive"


def test_verify_frameio_signature_checks_what_frameio_signs() -> None:
    """v0 HMAC over the raw body and timestamp, the body as text or bytes; stale or forged fail."""
    manager = FrameIOWebhookManager(use_cloudflare_tunnel=False, environ={})
    body = '{"type": "file.ready", "resource": {"id": "é"}}'
    stamp = str(int(time.time()))
    headers = FakeFrameio.sign("s3cret", body.encode("utf-8"), int(stamp))
    signature = headers["X-Frameio-Signature"]
    assert manager.verify_frameio_signature(signature, stamp, body, "s3cret")
    assert manager.verify_frameio_signature(signature, stamp, body.encode("utf-8"), "s3cret")
    assert not manager.verify_frameio_signature(signature, stamp, body, "other")
    assert not manager.verify_frameio_signature(signature, stamp, body + " ", "s3cret")
    old = str(int(time.time()) - 3600)
    stale = FakeFrameio.sign("s3cret", body.encode("utf-8"), int(old))["X-Frameio-Signature"]
    assert not manager.verify_frameio_signature(stale, old, body, "s3cret")


def test_a_start_up_failure_inside_the_receiver_returns_false(tmp_path: Path) -> None:
    """A tracker that breaks when read at start: False and the reason, never SystemExit."""

    class Exploding(dict[str, Any]):
        def values(self) -> Any:
            raise RuntimeError("the tracker file is being rewritten")

    tracker = UploadTracker()
    tracker.tracking_data["uploads"] = Exploding()
    manager = FrameIOWebhookManager(
        tracker,
        webhook_port=free_port(),
        use_cloudflare_tunnel=False,
        data_dir=tmp_path / "data",
        environ={},
    )
    assert manager.start_webhook_server() is False
    assert "tracker" in (manager.last_error or "")
    assert our_threads() == set()
    again = FrameIOWebhookManager(
        use_cloudflare_tunnel=False, data_dir=tmp_path / "data", environ={}
    )
    assert again.start_webhook_server(), again.last_error  # the data directory was let go
    again.stop()


def test_bad_arguments_are_named_at_start(tmp_path: Path) -> None:
    """A frameio_auth without get_access_token, a named tunnel without hostname or token: False."""
    manager = FrameIOWebhookManager(
        frameio_auth=object(), use_cloudflare_tunnel=False, data_dir=tmp_path, environ={}
    )
    assert manager.start_webhook_server() is False
    assert "get_access_token" in (manager.last_error or "")
    named = FrameIOWebhookManager(
        data_dir=tmp_path,
        webhook_secret="s3cret",
        environ={"POSTFLOW_TUNNEL": "named", "TUNNEL_TOKEN": "token"},
    )
    assert named.start_webhook_server() is False
    assert "POSTFLOW_TUNNEL_HOSTNAME" in (named.last_error or "")
    tokenless = FrameIOWebhookManager(
        data_dir=tmp_path,
        webhook_secret="s3cret",
        environ={"POSTFLOW_TUNNEL": "named", "POSTFLOW_TUNNEL_HOSTNAME": "hooks.example.com"},
    )
    assert tokenless.start_webhook_server() is False
    assert "TUNNEL_TOKEN" in (tokenless.last_error or "") and not tokenless.running


def test_verify_without_a_secret_is_false_not_an_error() -> None:
    """No secret to check with: the signature is not accepted, and nothing raises."""
    manager = FrameIOWebhookManager(use_cloudflare_tunnel=False, environ={})
    stamp = str(int(time.time()))
    signature = FakeFrameio.sign("", b"{}", int(stamp))["X-Frameio-Signature"]
    assert manager.verify_frameio_signature(signature, stamp, "{}", "") is False
    assert manager.verify_frameio_signature(signature, stamp, "{}", None) is False  # type: ignore[arg-type]


def test_with_our_own_credentials_postflows_configure_keeps_one_webhook(
    postflow_env: Path, frameio: FakeFrameio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our credentials register our webhook; PostFlow's configure adopts it rather than add one."""
    for key, value in {
        "CLIENT_ID": frameio.client_id,
        "CLIENT_SECRET": frameio.client_secret,
        "ACCOUNT_ID": frameio.account_id,
        "WORKSPACE_ID": frameio.workspace_id,
        "IMS_TOKEN_URL": f"{frameio.url}/ims/token/v3",
    }.items():
        monkeypatch.setenv(f"POSTFLOW_FRAMEIO_{key}", value)
    auth = auth_for(frameio)
    service = WebhookService(
        FrameIOWebhookManager, UploadTracker(), port=free_port(), frameio_auth=auth
    )
    assert service.start_service(), service.errors
    try:
        assert service.configure_frameio_webhook(frameio.account_id, frameio.workspace_id, auth)
        (hook,) = frameio.webhooks.values()
        assert hook["url"] == service.webhook_url
        assert service.manager.webhook_data["webhook_id"] == hook["id"]
        assert auth.calls == 0  # our own sign-in did the work
    finally:
        service.stop_service()


def test_delete_after_a_restart_finds_the_webhook_this_manager_created(
    postflow_env: Path, frameio: FakeFrameio
) -> None:
    """The created webhook's id is kept with the data: a new manager deletes that one only."""
    auth = auth_for(frameio)
    frameio.webhooks["other"] = {
        "id": "other",
        "name": "Someone else's",
        "url": "https://example.com/hook",
        "events": ["file.ready"],
        "active": True,
        "workspace_id": frameio.workspace_id,
        "secret": "x",
    }
    first = WebhookService(
        FrameIOWebhookManager, UploadTracker(), port=free_port(), frameio_auth=auth
    )
    assert first.start_service(), first.errors
    assert first.configure_frameio_webhook(frameio.account_id, frameio.workspace_id, auth)
    created = first.manager.webhook_data["webhook_id"]
    first.stop_service()
    later = FrameIOWebhookManager(UploadTracker(), webhook_port=free_port(), frameio_auth=auth)
    assert later.delete_webhook_sync(auth, frameio.account_id, frameio.workspace_id)
    assert created not in frameio.webhooks
    assert set(frameio.webhooks) == {"other"}


def test_reconciliation_uses_the_account_postflow_registers_with(
    postflow_env: Path, frameio: FakeFrameio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No account of ours: configure_frameio_webhook's account_id turns reconciliation on.

    The approval's delivery is lost (never sent); the next reconciliation pass
    reads the file with PostFlow's token and brings PostFlow's tracker to APPROVED.
    """
    monkeypatch.setenv("POSTFLOW_RECONCILE_INTERVAL", "0.5")
    file_id = frameio.add_file("SH020_v001.mov", status="transcoded")
    tracker = UploadTracker()
    upload_id = tracker.add_upload("/shots/SH020_v001.mov", "SH020", "v001")
    auth = auth_for(frameio)
    service = WebhookService(FrameIOWebhookManager, tracker, port=free_port(), frameio_auth=auth)
    assert service.start_service(), service.errors
    try:
        assert service.configure_frameio_webhook(frameio.account_id, frameio.workspace_id, auth)
        assert deliver(frameio, postflow_env, "file.ready", file_id) == 202
        wait_for(lambda: tracker.get_upload(upload_id)["status"] == UploadStatus.COMPLETED.value)
        frameio.set_status_field(file_id, "Approved")
        wait_for(lambda: [u["upload_id"] for u in tracker.get_approved_uploads()] == [upload_id])
        assert tracker.get_upload(upload_id)["status"] == UploadStatus.APPROVED.value
    finally:
        service.stop_service()
    assert service.errors == []


def test_postflows_intelligent_tracker_reads_the_comments_we_keep(tmp_path: Path) -> None:
    """_fetch_all_comments_for_file_sync: Frame.io's field names, deleted ones gone, no API call."""
    manager = FrameIOWebhookManager(
        upload_tracker=UploadTracker(),
        webhook_port=free_port(),
        use_cloudflare_tunnel=False,
        data_dir=tmp_path / "data",
        environ={"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")},
    )
    assert manager._fetch_all_comments_for_file_sync("f1") == [], "not running: none"

    def comment(action: str, comment_id: str, **extra: str) -> None:
        resource = {"id": "f1", "name": "SH030.mov", "comment_id": comment_id, **extra}
        manager.process_webhook_sync({"event_type": f"comment.{action}", "resource": resource})

    with manager:
        manager.process_webhook_sync(
            {"event_type": "file.ready", "resource": {"id": "f1", "name": "SH030.mov"}}
        )
        comment("created", "c1", text="Too dark", author="Ana")
        comment("created", "r1", text="Agreed", author="Bo", parent_id="c1")
        comment("created", "c2", text="Wrong logo", author="Cy")
        comment("completed", "c1")
        comment("deleted", "c2")
        wait_for(lambda: manager.get_webhook_stats()["total_events"] == 6)
        wait_for(lambda: len(manager._fetch_all_comments_for_file_sync("f1")) == 2)
        comments = manager._fetch_all_comments_for_file_sync("f1")
        unknown = manager._fetch_all_comments_for_file_sync("nobody-tracks-this")
    assert [(c["id"], c["text"], c["parent_id"], c["completed"]) for c in comments] == [
        ("c1", "Too dark", None, True),
        ("r1", "Agreed", "c1", True),
    ]
    assert [c["owner"] for c in comments] == [{"name": "Ana"}, {"name": "Bo"}]
    assert all(c["inserted_at"] for c in comments) and unknown == []
