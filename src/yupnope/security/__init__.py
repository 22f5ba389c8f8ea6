"""Hold pure security functions: no I/O beyond this package's own data, no Flask, no database.

Everything here takes plain values and returns plain values, so it can be read and tested alone.
"""
