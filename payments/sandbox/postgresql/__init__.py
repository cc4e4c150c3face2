"""PostgreSQL for the sandbox ledger's database, created on first connection when it is missing."""
