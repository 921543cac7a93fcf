"""The azc test suite; a package so that tests can share `tests.strategies`."""
