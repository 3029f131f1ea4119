"""The HTTP API: one route table, handlers grouped by resource in sibling modules."""

from __future__ import annotations

from starlette.routing import Route

from gateway.api import account, devices, health, messages, metrics, otp, tokens, webhooks

__all__ = ["routes"]

routes: list[Route] = [
    Route("/api/v1/health", health.health, methods=["GET"]),
    Route("/metrics", metrics.metrics, methods=["GET"]),
    Route("/api/v1/account", account.get_account, methods=["GET"]),
    Route("/api/v1/tokens", tokens.list_tokens, methods=["GET"]),
    Route("/api/v1/tokens", tokens.create, methods=["POST"]),
    Route("/api/v1/tokens/{token_id}", tokens.revoke, methods=["DELETE"]),
    Route("/api/v1/devices", devices.list_devices, methods=["GET"]),
    Route("/api/v1/devices/pairing-codes", devices.create_pairing, methods=["POST"]),
    Route("/api/v1/devices/{device_id}", devices.update_device, methods=["PATCH"]),
    Route("/api/v1/devices/{device_id}", devices.delete_device, methods=["DELETE"]),
    Route("/api/v1/relay/app/pair", devices.pair, methods=["POST"]),
    Route("/api/v1/sms/send", messages.send_sms, methods=["POST"]),
    Route("/api/v1/messages/status", messages.message_status, methods=["GET"]),
    Route("/api/v1/messages", messages.list_messages, methods=["GET"]),
    Route("/api/v1/otp/send", otp.send_otp, methods=["POST"]),
    Route("/api/v1/otp/verify", otp.verify_otp, methods=["POST"]),
    Route("/api/v1/otp/{otp_id}", otp.otp_status, methods=["GET"]),
    Route("/api/v1/webhooks", webhooks.list_webhooks, methods=["GET"]),
    Route("/api/v1/webhooks", webhooks.create, methods=["POST"]),
    Route("/api/v1/webhooks/deliveries", webhooks.list_deliveries, methods=["GET"]),
    Route("/api/v1/webhooks/deliveries/{delivery_id}", webhooks.get_delivery, methods=["GET"]),
    Route("/api/v1/webhooks/deliveries/{delivery_id}/retry", webhooks.retry_delivery, methods=["POST"]),
    Route("/api/v1/webhooks/{webhook_id}", webhooks.get, methods=["GET"]),
    Route("/api/v1/webhooks/{webhook_id}", webhooks.update, methods=["PATCH"]),
    Route("/api/v1/webhooks/{webhook_id}", webhooks.delete, methods=["DELETE"]),
    Route("/api/v1/webhooks/{webhook_id}/rotate-secret", webhooks.rotate_secret, methods=["POST"]),
    Route("/api/v1/webhooks/{webhook_id}/test", webhooks.send_test, methods=["POST"]),
]
