"""Apache Druid in production: the batch half of Lambda-on-Druid (native batch ingestion of each
closed day into the datasource the Kafka supervisor fills with speed rows)."""
