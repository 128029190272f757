"""Agent wallets and transfers: one async interface, embedded SQLite and Canton backends."""
