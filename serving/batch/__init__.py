"""The batch views (Parquet the nightly job writes), read through the storage interface."""
