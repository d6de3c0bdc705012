"""The SQL store behind the Store port: SQLite by default, PostgreSQL at scale."""
