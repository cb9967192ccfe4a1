"""Services: one module per operation, each owning its database transaction."""
