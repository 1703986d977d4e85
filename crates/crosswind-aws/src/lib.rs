//! CloudTrail collector.
#![forbid(unsafe_code)]
