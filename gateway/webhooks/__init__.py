"""Webhooks: endpoints, signing (Standard Webhooks), SSRF guard and the delivery dispatcher."""
