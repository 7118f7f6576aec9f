"""The real-time store (the Druid role): pixel.agg rows, rolled up by minute, and the query
interface the serving layer uses. Implementations: embedded DuckDB (default) and Druid."""
