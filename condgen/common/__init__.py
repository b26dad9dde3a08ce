"""The small pieces every layer uses: the toolkit's error types, file access with errors that name the
file, memory checks, devices, seeded generators, argument checks, and the strict base of every config.

Nothing here imports another part of condgen.
"""
