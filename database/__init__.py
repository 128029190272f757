"""What every PostgreSQL backend shares (the store, the tool cache, the ledger): pools that
fail fast, versioned schemas, and failures classified by type."""
