"""The verify stage: FK orphans, row counts and the leak scan of a loaded repro database."""
