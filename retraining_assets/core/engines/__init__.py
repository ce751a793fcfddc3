"""Monitoring statistics computed where the data lives: SQL run by the source database,
DuckDB over Parquet/CSV files (out of core), Spark SQL; the verdict is still made by
``core.drift`` whichever engine computed the statistics."""
