"""
The HTTP side: thin Twisted Web resources over the in-memory index.
"""
