"""The tunnel log file: verbatim lines, tagged lifecycle lines, size rotation."""

from __future__ import annotations

from pathlib import Path

from postflow_webhooks.adapters.cloudflared.logfile import TunnelLog


def test_lines_are_written_verbatim(tmp_path: Path) -> None:
    """a cloudflared line is stored exactly, one per line."""
    log = TunnelLog(tmp_path / "logs" / "t.log")
    log.write_line("2026-05-16T15:40:10Z INF Requesting new quick Tunnel on trycloudflare.com...\n")
    log.close()
    assert (tmp_path / "logs" / "t.log").read_text() == (
        "2026-05-16T15:40:10Z INF Requesting new quick Tunnel on trycloudflare.com...\n"
    )


def test_lifecycle_lines_are_tagged(tmp_path: Path) -> None:
    """our own lines carry a timestamp, INF and the [postflow] tag."""
    log = TunnelLog(tmp_path / "t.log")
    log.lifecycle("tunnel ready")
    log.close()
    text = (tmp_path / "t.log").read_text()
    assert text.endswith(" INF [postflow] tunnel ready\n") and text[19] == "Z"


def test_rotation_keeps_at_most_the_configured_backups(tmp_path: Path) -> None:
    """past max_bytes the file rotates to .1, .2 ...; older ones are dropped."""
    path = tmp_path / "t.log"
    log = TunnelLog(path, max_bytes=1000, backups=2)
    for index in range(100):
        log.write_line(f"line {index:04d} " + "x" * 40)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.log", "t.log.1", "t.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert path.read_text().splitlines()[-1].startswith("line 0099 ")
    assert "line 0000" not in "".join(p.read_text() for p in tmp_path.iterdir())


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    """a restart appends to the current log instead of truncating it."""
    path = tmp_path / "t.log"
    path.write_text("old line\n")
    log = TunnelLog(path)
    log.write_line("new line")
    log.close()
    assert path.read_text() == "old line\nnew line\n"
