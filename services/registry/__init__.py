"""The registry: verified issuance, retirement certificates, product footprint labels and claims."""
