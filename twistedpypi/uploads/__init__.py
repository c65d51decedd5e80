"""
Uploads and removals, without HTTP: the multipart form read as a stream,
the checks an upload must pass, and the store that writes files into
the package directory atomically.
"""
