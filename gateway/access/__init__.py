"""Who may call: accounts, access tokens, scopes, authentication and the per-token rate limit."""
