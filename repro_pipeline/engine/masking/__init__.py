"""The masking stage: per-column maskers from the rules (fakes, hash, static, null, regex, JSON paths),
uniqueness, type fit, and PII auto-detection."""
