"""Parsing cloudflared's stderr: only the box row gives a URL; each line's meaning."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postflow_webhooks.adapters.cloudflared.output import (
    Kind,
    parse_fields,
    parse_line,
    parse_version,
    strip_ansi,
)

TS = "2026-05-16T15:40:15Z"
URL = "https://accurately-cardiac-comments-motorola.trycloudflare.com"


def box_row(text: str) -> str:
    """A banner row as cloudflared prints it: two spaces, text padded to 88, two spaces."""
    return f"{TS} INF |  {text.ljust(88)}  |"


def test_the_box_row_yields_the_url() -> None:
    """the banner's URL row is recognised and gives the https URL."""
    line = parse_line(box_row(URL))
    assert line.kind is Kind.URL and line.url == URL


def test_the_box_border_and_title_are_not_urls() -> None:
    """the box's dashes and its title row carry no URL."""
    border = f"{TS} INF +{'-' * 92}+"
    title = box_row(
        "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):"
    )
    assert parse_line(border).url is None
    assert parse_line(title).url is None


def test_the_api_hostname_in_an_error_is_never_a_url() -> None:
    """https://api.trycloudflare.com inside the fatal line is not taken for the tunnel URL."""
    fatal = (
        'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: '
        "lookup api.trycloudflare.com: no such host"
    )
    line = parse_line(fatal)
    assert line.kind is Kind.FATAL and line.url is None and line.level is None


def test_a_url_outside_the_box_is_ignored() -> None:
    """a trycloudflare URL in an ordinary INF line is not the banner."""
    assert parse_line(f"{TS} INF Visit {URL} now").url is None


@given(st.lists(st.from_regex(r"[a-z]{3,10}", fullmatch=True), min_size=2, max_size=5))
def test_any_random_hostname_in_the_box_is_parsed(words: list[str]) -> None:
    """whatever words the hostname is made of, the box row yields it exactly."""
    url = f"https://{'-'.join(words)}.trycloudflare.com"
    assert parse_line(box_row(url)).url == url


def test_the_registration_line_and_its_fields() -> None:
    """the registration line is REGISTERED with its key=value fields."""
    line = parse_line(
        f"{TS} INF Registered tunnel connection connIndex=0 "
        "connection=387f4b99-e4c2-40b6-95b8-f53d13f5d87b event=0 ip=198.41.192.167 "
        "location=fra08 protocol=quic"
    )
    assert line.kind is Kind.REGISTERED and line.level == "INF"
    assert line.fields["location"] == "fra08" and line.fields["protocol"] == "quic"


def test_rate_limit_lines() -> None:
    """the 1015 / 429 answer is recognised as rate limiting."""
    line = parse_line(
        "2026-05-29T09:25:34Z ERR Error unmarshaling QuickTunnel response: error code: 1015 "
        "error=\"invalid character 'e' looking for beginning of value\" "
        'status_code="429 Too Many Requests"'
    )
    assert line.kind is Kind.RATE_LIMITED and line.level == "ERR"


def test_the_fatal_last_line_has_no_timestamp() -> None:
    """a line without the timestamp prefix is a fatal last line."""
    line = parse_line(
        "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value"
    )
    assert line.kind is Kind.FATAL


def test_invalid_token() -> None:
    """the invalid-token message is recognised."""
    assert parse_line("Provided Tunnel token is not valid.").kind is Kind.INVALID_TOKEN


def test_edge_unreachable_lines() -> None:
    """dial failures are edge failures with fields; the retry line is RETRYING."""
    dial = parse_line(
        '2026-07-23T12:18:59Z ERR Failed to dial a quic connection error="failed to dial to edge '
        'with quic: timeout: no recent network activity" connIndex=0 event=0 ip=198.41.192.77'
    )
    retry = parse_line(
        "2026-07-23T12:18:59Z INF Retrying connection in up to 1m4s connIndex=0 event=0 ip=198.41.192.77"
    )
    assert dial.kind is Kind.EDGE_FAILURE and dial.fields["ip"] == "198.41.192.77"
    assert dial.fields["error"].startswith("failed to dial to edge")
    assert retry.kind is Kind.RETRYING


def test_an_origin_error_is_not_fatal() -> None:
    """a per-request origin error is an ordinary ERR line, not a death notice."""
    line = parse_line(
        f'{TS} ERR Request failed error="Unable to reach the origin service." connIndex=0 '
        "dest=https://x.trycloudflare.com/path"
    )
    assert line.kind is Kind.OTHER and line.level == "ERR"


def test_shutdown_line() -> None:
    """the graceful shutdown line is recognised."""
    line = parse_line(f"{TS} INF Initiating graceful shutdown due to signal terminated ...")
    assert line.kind is Kind.SHUTDOWN


def test_ansi_colour_is_stripped() -> None:
    """colour codes around level and text are removed before parsing."""
    coloured = f"\x1b[90m{TS}\x1b[0m \x1b[32mINF\x1b[0m |  {URL.ljust(88)}  |\r\n"
    assert strip_ansi(coloured) == box_row(URL)
    assert parse_line(coloured).url == URL


def test_fields_unquote_values() -> None:
    """quoted values keep their spaces and lose their quotes."""
    assert parse_fields('error="a b c" ip=1.2.3.4') == {"error": "a b c", "ip": "1.2.3.4"}


def test_version_parsing() -> None:
    """the version triple is read from --version output and from the Version line."""
    assert parse_version("cloudflared version 2026.8.0 (built 2026-08-12-1200 UTC)") == (2026, 8, 0)
    assert parse_version("Version 2026.5.0 (Checksum 2b9a)") == (2026, 5, 0)
    assert parse_version("no version here") is None
