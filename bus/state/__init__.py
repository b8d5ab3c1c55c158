"""Mechanism: state kept in Kafka. Commanded global tables (command_log, command_table,
command_apply), keyed state with its per-partition catch-up (keyed), and waits.
"""
