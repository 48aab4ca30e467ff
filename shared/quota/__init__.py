"""Monthly character quota."""
