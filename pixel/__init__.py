"""The platform's shared glue: settings, the `pixel` CLI, Kafka client configuration."""
