"""A shop's data: the contract and its columns, adapters, ingestion, the generated shop."""
