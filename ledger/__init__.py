"""Agent wallets and transfers: one async interface, an embedded SQLite backend and a Canton backend."""
