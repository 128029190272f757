-- The database p2e keeps its store, tool cache and ledger in; Temporal makes its own.
CREATE DATABASE p2e;
