"""The HTTP API: validates, authorizes and enqueues. Domain logic lives in `shared/`."""
