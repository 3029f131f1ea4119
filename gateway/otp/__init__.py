"""One-time passwords: send, verify, and the localised SMS templates."""
