"""The batch layer: the raw lander (Kafka -> raw store) and the nightly reprocessing job."""
