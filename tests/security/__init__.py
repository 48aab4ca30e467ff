"""Rate limits, HTTP hardening and bad input, against real Redis and the API over real HTTP."""
