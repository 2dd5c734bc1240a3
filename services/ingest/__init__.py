"""Ingest: the only door for devices. Authenticates, validates, routes batches to the
detector shard that owns the device, makes their consequences durable, then acks."""
