"""Stripe: webhook signatures and the Checkout providers (official library or offline test mode)."""
