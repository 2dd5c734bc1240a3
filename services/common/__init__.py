"""What every Vigil service shares: settings, bootstrap, logging, metrics, errors, auth,
Redis (keys, scripts, client, embedded server) and the event and job formats."""
