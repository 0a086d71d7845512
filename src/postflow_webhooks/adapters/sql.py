"""SQL that both database adapters build alike, each in its own parameter style."""

from __future__ import annotations

from postflow_webhooks.domain.statuses import PostflowStatus


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (backslash is the escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def file_filter(
    status: PostflowStatus | None, search: str | None, *, param: str, like: str
) -> tuple[str, list[object]]:
    """The ``WHERE`` clause (or ``""``) and its arguments for tracked files.

    By status, and by a search in the name or the file id. ``param`` is the
    engine's placeholder (``?``, ``%s``); ``like`` its case-folding LIKE with
    the placeholder and backslash escape (``LIKE ? ESCAPE '\\'``, ``ILIKE %s``).
    """
    clauses: list[str] = []
    args: list[object] = []
    if status is not None:
        clauses.append(f"status = {param}")
        args.append(status.name)
    if search:
        pattern = f"%{escape_like(search)}%"
        clauses.append(f"(name {like} OR file_id {like})")
        args += [pattern, pattern]
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args
