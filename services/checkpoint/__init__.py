"""Signed log checkpoints: the exchange's Ed25519 signature over a seq and its chain link."""
