"""Bearer tokens borrowed from the host application (PostFlow's ``FrameIOAuth``).

PostFlow signs its users in to Frame.io itself and refreshes their tokens.
When it hands its auth object to the facade and no credentials of our own are
configured, the API calls (enrichment, webhook registration, reconciliation)
use its tokens; its failures are reported like ours (``FrameioAuthError``).
"""

from __future__ import annotations

import inspect
from typing import Any

from postflow_webhooks.adapters.frameio.errors import FrameioAuthError


class BorrowedTokens:
    """A ``TokenSource`` over an object with ``get_access_token()`` (async or not)."""

    def __init__(self, owner: Any) -> None:
        if not callable(getattr(owner, "get_access_token", None)):
            raise TypeError("the Frame.io auth object has no get_access_token() method")
        self._owner = owner

    def __repr__(self) -> str:
        return f"BorrowedTokens({type(self._owner).__name__})"

    async def access_token(self) -> str:
        """The owner's current token (it refreshes it itself)."""
        try:
            token = self._owner.get_access_token()
            if inspect.isawaitable(token):
                token = await token
        except Exception as exc:  # the host's sign-in failed: say so, as ours would
            raise FrameioAuthError(
                f"PostFlow's Frame.io sign-in failed ({type(exc).__name__})"
            ) from None
        if not isinstance(token, str) or not token:
            raise FrameioAuthError("PostFlow's Frame.io sign-in gave no access token")
        return token

    async def invalidate(self, rejected: str) -> None:
        """Frame.io refused the token; the owner refreshes on its own schedule."""
