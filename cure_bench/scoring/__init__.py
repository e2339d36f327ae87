"""Stage 4 of the data path: pure functions from verdict tables to numbers.

``catalogue`` names every metric once, ``rankers`` holds every Best-of-N ranker once, and ``metrics``
computes summary.json's ``metrics`` block from them.
"""
