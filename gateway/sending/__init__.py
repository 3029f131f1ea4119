"""The send path: validating a message, the durable pipeline to relays, and state transitions."""
