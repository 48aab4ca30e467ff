"""Jobs: durable records in MongoDB, live status mirrored in Redis, transitions pushed on pub/sub."""
