"""The relay side of the gateway: the live registry of phones and the WebSocket listener."""
