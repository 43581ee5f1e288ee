"""The embedded detector zoo: the procedural shapes world and the detectors trained on it.

Importing this package imports torch and OpenCV; the pytest plugin imports it lazily.
"""
