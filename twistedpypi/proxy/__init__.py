"""
The fallback index as a cache (C{--fallback-mode proxy}): upstream pages
fetched with treq and read into one structure, files downloaded once, single
flight for concurrent requests.
"""
