"""Settings, Temporal client and worker assembly, dev-server provisioning, artifact store."""
