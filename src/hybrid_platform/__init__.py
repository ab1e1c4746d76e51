"""Shared contract of the hybrid data platform."""
