"""
Rendering: pure functions from index objects to the bytes of pages (the
simple API, the JSON API, the file listing, the pages a person browses).
"""
