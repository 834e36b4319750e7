"""Digital government: the catalogue of matters, applications, approvals within legal limits, e-certificates."""
