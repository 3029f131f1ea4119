"""The HTTP API: the one table of endpoints (:data:`ENDPOINTS`), handlers grouped by resource in
sibling modules. Starlette's routes, the 405 ``Allow`` header and the OpenAPI document are all
made from this table."""

from __future__ import annotations

from starlette.routing import Route

from gateway.api import (
    account,
    batches,
    devices,
    docs,
    health,
    inbound,
    messages,
    metrics,
    otp,
    queue,
    readiness,
    recipients,
    tokens,
    webhooks,
)
from gateway.api.common import PageQuery
from gateway.api.routing import Endpoint, starlette_routes

__all__ = ["ENDPOINTS", "routes"]


ENDPOINTS: list[Endpoint] = [
    # --- health and account ----------------------------------------------------------------
    Endpoint(
        "GET", "/api/v1/health", health.health, "Health: process up, database reachable", "health",
        {200: health.Health, 503: health.Health},
    ),
    Endpoint(
        "GET", "/api/v1/account", account.get_account, "The calling account and token", "account",
        {200: account.AccountResponse}, scope="account.read",
    ),
    Endpoint(
        "PATCH", "/api/v1/account", account.update_account,
        "Rename, relay mode, default region, quiet hours", "account",
        {200: account.AccountResponse}, scope="account.manage", body=account.AccountUpdate,
    ),
    Endpoint(
        "GET", "/api/v1/launch/readiness", readiness.launch_readiness,
        "Is the account ready for real traffic? One pass/warn/fail line per check", "account",
        {200: readiness.Readiness}, scope="account.read",
    ),
    # --- queue -------------------------------------------------------------------------------
    Endpoint(
        "GET", "/api/v1/queue", queue.get_queue, "Queue health: depth, age, relays, capacity, last minute",
        "queue", {200: queue.QueueResponse}, scope="account.read",
    ),
    Endpoint(
        "POST", "/api/v1/queue/pause", queue.pause, "Pause the queue: nothing dispatched, sends refused",
        "queue", {200: queue.QueueResponse}, scope="queue.manage",
    ),
    Endpoint(
        "POST", "/api/v1/queue/resume", queue.resume, "Resume the queue", "queue",
        {200: queue.QueueResponse}, scope="queue.manage",
    ),
    # --- tokens ------------------------------------------------------------------------------
    Endpoint(
        "GET", "/api/v1/tokens", tokens.list_tokens, "List access tokens", "tokens",
        {200: tokens.TokenList}, scope="tokens.manage", query=PageQuery,
    ),
    Endpoint(
        "POST", "/api/v1/tokens", tokens.create, "Create an access token (shown once)", "tokens",
        {201: tokens.TokenCreated}, scope="tokens.manage", body=tokens.TokenCreate,
    ),
    Endpoint(
        "DELETE", "/api/v1/tokens/{token_id}", tokens.revoke, "Revoke an access token", "tokens",
        {200: tokens.TokenRevoked}, scope="tokens.manage",
    ),
    # --- relays ------------------------------------------------------------------------------
    Endpoint(
        "GET", "/api/v1/devices", devices.list_devices, "List relays with their live state", "devices",
        {200: devices.DeviceList}, scope="account.read", query=PageQuery,
    ),
    Endpoint(
        "POST", "/api/v1/devices/pairing-codes", devices.create_pairing, "Create a pairing code", "devices",
        {201: devices.PairingCodeCreated}, scope="devices.manage", body=devices.PairingCodeRequest,
        body_optional=True,
    ),
    Endpoint(
        "PATCH", "/api/v1/devices/{device_id}", devices.update_device, "Rename, enable/disable, set limits",
        "devices", {200: devices.DeviceResponse}, scope="devices.manage", body=devices.DeviceUpdate,
    ),
    Endpoint(
        "DELETE", "/api/v1/devices/{device_id}", devices.delete_device, "Unpair a relay", "devices",
        {200: devices.DeviceDeleted}, scope="devices.manage",
    ),
    Endpoint(
        "POST", "/api/v1/relay/app/pair", devices.pair, "The relay app spends a pairing code", "devices",
        {200: devices.Paired}, body=devices.PairRequest, before_body=devices.pairing_rate_limit,
        errors=("not_found", "rate_limited"),
    ),
    # --- sending -----------------------------------------------------------------------------
    Endpoint(
        "POST", "/api/v1/sms/send", messages.send_sms, "Send one SMS", "messages",
        {200: messages.Accepted}, scope="messages.send", sending=True, body=messages.SendRequest,
        errors=("invalid_device", "queue_blocked", "conflict"), idempotent=True,
    ),
    Endpoint(
        "GET", "/api/v1/messages/status", messages.message_status, "A message's status and timeline",
        "messages", {200: messages.MessageStatus}, scope="messages.read", query=messages.StatusQuery,
        errors=("not_found",),
    ),
    Endpoint(
        "GET", "/api/v1/messages", messages.list_messages, "List messages, newest first", "messages",
        {200: messages.MessageList}, scope="messages.read", query=messages.MessageListQuery,
    ),
    Endpoint(
        "DELETE", "/api/v1/messages/{request_id}", messages.cancel_message, "Cancel a message not sent yet",
        "messages", {200: messages.CancelAnswer, 202: messages.CancelAnswer}, scope="messages.send",
        errors=("conflict",),
    ),
    Endpoint(
        "GET", "/api/v1/inbound", inbound.list_inbound, "List SMS the relays received, oldest first",
        "messages", {200: inbound.InboundList}, scope="messages.read", query=inbound.InboundQuery,
    ),
    # --- OTP ---------------------------------------------------------------------------------
    Endpoint(
        "POST", "/api/v1/otp/send", otp.send_otp, "Send a one-time code", "otp",
        {200: otp.OtpSendAnswer}, scope="otp.send", sending=True, body=otp.OtpSendRequest,
        errors=("invalid_device", "queue_blocked", "conflict"), idempotent=True,
    ),
    Endpoint(
        "POST", "/api/v1/otp/verify", otp.verify_otp, "Verify a one-time code", "otp",
        {200: otp.OtpVerifyAnswer}, scope="otp.verify", body=otp.OtpVerifyRequest, errors=("not_found",),
    ),
    Endpoint(
        "GET", "/api/v1/otp/{otp_id}", otp.otp_status, "A code's state (never the code)", "otp",
        {200: otp.OtpStatus}, scope="messages.read",
    ),
    # --- webhooks ----------------------------------------------------------------------------
    Endpoint(
        "GET", "/api/v1/webhooks", webhooks.list_webhooks, "List webhook endpoints", "webhooks",
        {200: webhooks.WebhookList}, scope="webhooks.manage", query=PageQuery,
    ),
    Endpoint(
        "POST", "/api/v1/webhooks", webhooks.create, "Register a webhook endpoint", "webhooks",
        {201: webhooks.WebhookCreated}, scope="webhooks.manage", body=webhooks.WebhookCreate,
    ),
    Endpoint(
        "GET", "/api/v1/webhooks/deliveries", webhooks.list_deliveries, "List webhook deliveries",
        "webhooks", {200: webhooks.DeliveryList}, scope="webhooks.manage", query=webhooks.DeliveryListQuery,
    ),
    Endpoint(
        "GET", "/api/v1/webhooks/deliveries/{delivery_id}", webhooks.get_delivery,
        "A delivery with its payload and attempts", "webhooks", {200: webhooks.DeliveryDetail},
        scope="webhooks.manage",
    ),
    Endpoint(
        "POST", "/api/v1/webhooks/deliveries/{delivery_id}/retry", webhooks.retry_delivery,
        "Redeliver now", "webhooks", {202: webhooks.DeliveryResponse}, scope="webhooks.manage",
    ),
    Endpoint(
        "GET", "/api/v1/webhooks/{webhook_id}", webhooks.get, "One webhook endpoint", "webhooks",
        {200: webhooks.WebhookResponse}, scope="webhooks.manage",
    ),
    Endpoint(
        "PATCH", "/api/v1/webhooks/{webhook_id}", webhooks.update, "Change a webhook endpoint", "webhooks",
        {200: webhooks.WebhookResponse}, scope="webhooks.manage", body=webhooks.WebhookUpdate,
    ),
    Endpoint(
        "DELETE", "/api/v1/webhooks/{webhook_id}", webhooks.delete, "Remove a webhook endpoint", "webhooks",
        {200: webhooks.WebhookDeleted}, scope="webhooks.manage",
    ),
    Endpoint(
        "POST", "/api/v1/webhooks/{webhook_id}/rotate-secret", webhooks.rotate_secret,
        "Rotate the signing secret", "webhooks", {200: webhooks.SecretRotated}, scope="webhooks.manage",
    ),
    Endpoint(
        "POST", "/api/v1/webhooks/{webhook_id}/test", webhooks.send_test, "Send a webhook.test event",
        "webhooks", {202: webhooks.TestQueued}, scope="webhooks.manage",
    ),
    # --- recipients ----------------------------------------------------------------------------
    Endpoint(
        "POST", "/api/v1/recipients", recipients.create, "Add a recipient to the directory", "recipients",
        {201: recipients.RecipientResponse}, scope="recipients.write", body=recipients.RecipientCreate,
        errors=("conflict",),
    ),
    Endpoint(
        "GET", "/api/v1/recipients", recipients.search, "Search the directory", "recipients",
        {200: recipients.RecipientPage}, scope="recipients.read", query=recipients.RecipientSearch,
    ),
    Endpoint(
        "POST", "/api/v1/recipients/import", recipients.import_file, "Import recipients from CSV",
        "recipients", {200: recipients.ImportReport}, scope="recipients.write", query=recipients.ImportQuery,
        errors=("payload_too_large", "validation_error"),
    ),
    Endpoint(
        "GET", "/api/v1/recipients/{recipient_id}", recipients.get, "One recipient", "recipients",
        {200: recipients.RecipientResponse}, scope="recipients.read",
    ),
    Endpoint(
        "PATCH", "/api/v1/recipients/{recipient_id}", recipients.update, "Change a recipient (opt-out too)",
        "recipients", {200: recipients.RecipientResponse}, scope="recipients.write",
        body=recipients.RecipientUpdate, errors=("conflict",),
    ),
    Endpoint(
        "DELETE", "/api/v1/recipients/{recipient_id}", recipients.delete, "Remove a recipient",
        "recipients", {200: recipients.RecipientDeleted}, scope="recipients.write",
    ),
    Endpoint(
        "POST", "/api/v1/recipient-lists", recipients.create_list, "Create a recipient list", "recipients",
        {201: recipients.ListResponse}, scope="recipients.write", body=recipients.ListCreate,
    ),
    Endpoint(
        "GET", "/api/v1/recipient-lists", recipients.list_lists, "List recipient lists", "recipients",
        {200: recipients.ListPage}, scope="recipients.read", query=PageQuery,
    ),
    Endpoint(
        "GET", "/api/v1/recipient-lists/{list_id}", recipients.get_list, "One recipient list",
        "recipients", {200: recipients.ListResponse}, scope="recipients.read",
    ),
    Endpoint(
        "PATCH", "/api/v1/recipient-lists/{list_id}", recipients.update_list, "Rename a recipient list",
        "recipients", {200: recipients.ListResponse}, scope="recipients.write", body=recipients.ListUpdate,
    ),
    Endpoint(
        "DELETE", "/api/v1/recipient-lists/{list_id}", recipients.delete_list, "Delete a recipient list",
        "recipients", {200: recipients.ListDeleted}, scope="recipients.write",
    ),
    Endpoint(
        "GET", "/api/v1/recipient-lists/{list_id}/members", recipients.list_members, "A list's members",
        "recipients", {200: recipients.MemberPage}, scope="recipients.read", query=PageQuery,
    ),
    Endpoint(
        "POST", "/api/v1/recipient-lists/{list_id}/members", recipients.add_members,
        "Add members (by id or number)", "recipients", {200: recipients.MembersChanged},
        scope="recipients.write", body=recipients.MembersChange,
    ),
    Endpoint(
        "DELETE", "/api/v1/recipient-lists/{list_id}/members", recipients.remove_members,
        "Remove members (by id or number)", "recipients", {200: recipients.MembersChanged},
        scope="recipients.write", body=recipients.MembersChange,
    ),
    # --- list sends ----------------------------------------------------------------------------
    Endpoint(
        "POST", "/api/v1/recipient-lists/queue", batches.queue_list,
        "Queue a recipient list: every number its own message", "recipients", {200: batches.BatchQueued},
        scope="messages.send", sending=True, body=batches.QueueRequest,
        errors=("not_found", "invalid_device", "conflict"), idempotent=True,
    ),
    Endpoint(
        "GET", "/api/v1/batches/{batch_id}", batches.get_batch, "A list send's progress", "recipients",
        {200: batches.BatchResponse}, scope="messages.read",
    ),
    Endpoint(
        "POST", "/api/v1/batches/{batch_id}/cancel", batches.cancel_batch,
        "Cancel what is still queued of a list send", "recipients", {200: batches.BatchCancelled},
        scope="messages.send",
    ),
]  # fmt: skip

routes: list[Route] = [
    *starlette_routes(ENDPOINTS),
    Route("/metrics", metrics.metrics, methods=["GET"]),
    Route("/api/openapi.json", docs.openapi_json, methods=["GET"]),
    Route("/api/docs", docs.reference_page, methods=["GET"]),
]
