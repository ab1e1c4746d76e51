"""What the Flink jobs share: Kafka tables in SQL and job settings. Jobs import this, never each other."""
