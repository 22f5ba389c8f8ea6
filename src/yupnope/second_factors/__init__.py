"""Hold the rules of second factors: authenticator apps, recovery codes, a login's second step.

Plain values in, results or domain errors out, no Flask, as the other rules. Every code a
person types here is counted by the throttle before it is checked (throttle/throttle.py,
``admit_second_factor``), and every single use is one conditional write (store/factors.py).
"""
