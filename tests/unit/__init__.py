"""Unit tests: settings, options, wire JSON, error mapping, redaction; no network, no subprocess services."""
