//! Unit tests: config validation, URL building, Retry-After parsing.
