//! Simulated AWS CloudTrail LookupEvents (placeholder, filled below).
