"""In-memory fakes of the storage ports, for service tests that need no database."""
