"""Adapters: the database, Stripe, outbound HTTP, CSV, the secret box."""
