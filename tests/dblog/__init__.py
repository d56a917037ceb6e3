"""Tests of dblog."""
