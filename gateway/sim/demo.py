"""``relaygate demo``: the gateway on the embedded database with three simulated relays (two
WebSocket relays of docs/protocol.md and one SMSGate app of docs/phones.md), and ready cURL
lines, so a newcomer sees a message go queued → delivered without a phone."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from gateway.access.accounts import create_account
from gateway.config import Settings
from gateway.runtime import Gateway
from gateway.sim.relay import RelayFleet, SimOptions
from gateway.sim.smsgate import SmsGateFleet

__all__ = ["run_demo"]


async def run_demo(settings: Settings) -> int:
    """Run gateway + fleet until SIGINT/SIGTERM."""
    settings = settings.replace(pair_rate_per_second=100.0, pair_burst=100, webhook_allow_private=True)
    gateway = Gateway(settings, announce=lambda text: None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet: RelayFleet | None = None
    phones: SmsGateFleet | None = None
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        await gateway.start()
        assert gateway.pool is not None
        async with gateway.pool.acquire() as conn:
            account, token = await create_account(conn, "demo")
        base = settings.api_base_url(gateway.http_port)
        fleet = await RelayFleet.start(
            SimOptions(api_url=base, token=token, devices=2, sent_delay=1.0, delivered_delay=2.0)
        )
        phones = SmsGateFleet(http, base, token)
        await phones.add(name="SMSGate demo phone", sent_delay=1.0, delivered_delay=2.0)
        auth = f"-H 'Authorization: Bearer {token}'"
        print(
            "\n".join(
                [
                    "",
                    f"relaygate demo: gateway at {base}, 3 simulated relays online (2 WebSocket, 1 SMSGate app), "
                    f"account {account.id}",
                    f"token: {token}",
                    "",
                    "Send an SMS:",
                    f"  curl -s {auth} -H 'Content-Type: application/json' \\",
                    f'       -d \'{{"to": "+998901234567", "message": "Hello from relaygate"}}\' {base}/v1/sms/send',
                    "Then follow it (queued -> dispatched -> sent -> delivered within a few seconds):",
                    f"  curl -s {auth} '{base}/v1/messages/status?request_id=req_...'",
                    "The relays:",
                    f"  curl -s {auth} {base}/v1/devices",
                    "",
                    "Ctrl-C stops the demo.",
                ]
            ),
            flush=True,
        )
        await stop.wait()
    finally:
        if phones is not None:
            await phones.stop()
        if fleet is not None:
            await fleet.stop()
        await http.close()
        await gateway.stop()
    return 0
