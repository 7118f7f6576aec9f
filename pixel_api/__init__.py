"""The collector: answers the pixel in microseconds and hands raw events to Kafka."""
