"""The target side: repro databases on the target server (create, record, expire, drop), the login of each
and the secret sink its DSN goes to, and the run's manifest inside each."""
