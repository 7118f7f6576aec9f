"""Event schemas and enrichment rules: pure functions, no I/O.

Every runtime (the collector, the lander, the Flink job, the Spark job, the tests) imports the
rules from here, so the speed and batch layers can never disagree about what an event is.
"""
