"""The HTTP API: one route table, handlers grouped by resource in sibling modules."""

from __future__ import annotations

from starlette.routing import Route

from gateway.api import account, health, tokens

__all__ = ["routes"]

routes: list[Route] = [
    Route("/api/v1/health", health.health, methods=["GET"]),
    Route("/api/v1/account", account.get_account, methods=["GET"]),
    Route("/api/v1/tokens", tokens.list_tokens, methods=["GET"]),
    Route("/api/v1/tokens", tokens.create, methods=["POST"]),
    Route("/api/v1/tokens/{token_id}", tokens.revoke, methods=["DELETE"]),
]
