"""The provider-backed voice pool: slots, LRU order, leases, eviction, reconciliation."""
