"""Loading a feature repository and `feature_store.yaml`; plan (diff)."""
