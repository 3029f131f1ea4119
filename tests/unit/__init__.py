"""Unit tests: pure, no sockets, no event loop, no database."""
