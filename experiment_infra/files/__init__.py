"""Crash-safe files: writes and moves that a kill never leaves half done (``atomic``), one
writer per directory at a time with a lock file that names its holder (``lock``), and the
sweep of the temp files that killed writers left behind (``sweep``). Beneath every stage
that writes; the paths themselves come from ``layout``.

May import: layout, processes, records
"""
