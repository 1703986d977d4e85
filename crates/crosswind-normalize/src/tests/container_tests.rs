//! Container tests.
