"""Child processes: process groups, timeouts, exit reasons and proofs of a process's
identity before it is signalled (``process``), the stop that the first Ctrl-C or SIGTERM
starts (``interrupt``), why a failed attempt failed and whether another is worth it
(``failures``), and the helper processes that run pure file work off a flow's GIL
(``helpers``). Beneath every stage: it writes no file.

May import: nothing (errors, lazy and clock only)
"""
