"""The subset stage: the tenant, root predicates, the FK closure to a fixed point, key sets."""
